//! A few Python values, printed as Python prints them, for the ports of the seed programs.
#![allow(dead_code, unreachable_pub)]

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Python value of the kinds the seed programs send: `42`, `None`, `'hello'`, lists, pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Py {
    Int(i64),
    Float(f64),
    None,
    Str(String),
    List(Vec<Py>),
    Tuple(Vec<Py>),
}

impl Py {
    pub fn str(text: &str) -> Py {
        Py::Str(text.to_string())
    }
}

fn join(items: &[Py]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Py {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Py::Int(n) => write!(f, "{n}"),
            Py::Float(x) => write!(f, "{x}"),
            Py::None => f.write_str("None"),
            Py::Str(text) => write!(f, "'{text}'"),
            Py::List(items) => write!(f, "[{}]", join(items)),
            Py::Tuple(items) => write!(f, "({})", join(items)),
        }
    }
}

/// Prints a list of numbers as Python does: `[1, 4, 9, 16]`.
pub fn list<T: fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}
