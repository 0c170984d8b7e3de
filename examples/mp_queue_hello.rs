//! The seed's first queue program (Python's docs): a child OS process puts
//! `[42, None, 'hello']` into a queue and the parent prints what it gets.
//!
//! ```python
//! def f(q):
//!     q.put([42, None, 'hello'])
//! q = Queue(); p = Process(target=f, args=(q,)); p.start(); print(q.get())
//! ```
//!
//! Run: `cargo run --example mp_queue_hello`. Prints `[42, None, 'hello']`.

#[path = "common/py.rs"]
mod py;

use csp::patterns::Queue;
use csp::prelude::*;
use py::Py;

#[process]
fn f(q: Queue<Py>) -> Result<(), String> {
    let item = Py::List(vec![Py::Int(42), Py::None, Py::str("hello")]);
    q.put(item).map_err(|error| error.to_string())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q = Queue::new();
    let p = f(q.clone()).os()?.spawn();
    println!("{}", q.get()?);
    p.join()??;
    Ok(())
}
