//! The seeds' Namespace program: a child OS process changes two attributes of a namespace
//! served by a manager, and the parent sees the change.
//!
//! ```python
//! def Mng_NaSp(using_ns):
//!     using_ns.x += 5
//!     using_ns.y *= 10
//! using_ns = manager.Namespace(); using_ns.x = 1; using_ns.y = 1
//! print('before', using_ns); p = Process(...); p.start(); p.join(); print('after', using_ns)
//! ```
//!
//! Run: `cargo run --example mp_namespace`. Prints `before Namespace(x=1, y=1)` and
//! `after Namespace(x=6, y=10)`.

use csp::patterns::{Manager, Namespace};
use csp::prelude::*;

#[process]
fn mng_nasp(using_ns: Namespace<i64>) -> Result<(), String> {
    // Both changes in one atomic update: no other process sees one without the other.
    using_ns
        .update(|ns| {
            *ns.get_mut("x").expect("x is set") += 5;
            *ns.get_mut("y").expect("y is set") *= 10;
        })
        .map_err(|error| error.to_string())
}

fn show(ns: &Namespace<i64>) -> Result<String, csp::patterns::PatternError> {
    let attributes: Vec<String> = ns
        .snapshot()?
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    Ok(format!("Namespace({})", attributes.join(", ")))
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::new();
    let using_ns = manager.namespace();
    using_ns.insert("x".into(), 1)?;
    using_ns.insert("y".into(), 1)?;
    println!("before {}", show(&using_ns)?);
    mng_nasp(using_ns.clone()).os()?.run()??;
    println!("after {}", show(&using_ns)?);
    Ok(())
}
