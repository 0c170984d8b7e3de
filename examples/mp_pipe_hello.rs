//! The seed's first pipe program (Python's docs): a child OS process sends
//! `[42, None, 'hello']` through a pipe and closes its end; the parent prints it.
//!
//! ```python
//! def f(conn):
//!     conn.send([42, None, 'hello']); conn.close()
//! parent_conn, child_conn = Pipe()
//! p = Process(target=f, args=(child_conn,)); p.start(); print(parent_conn.recv()); p.join()
//! ```
//!
//! Run: `cargo run --example mp_pipe_hello`. Prints `[42, None, 'hello']`.

#[path = "common/py.rs"]
mod py;

use csp::patterns::{PipeEnd, pipe};
use csp::prelude::*;
use py::Py;

#[process]
fn f(conn: PipeEnd<Py>) -> Result<(), String> {
    conn.send(Py::List(vec![Py::Int(42), Py::None, Py::str("hello")]))
        .map_err(|error| error.to_string())?;
    conn.close();
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (parent_conn, child_conn) = pipe();
    let p = f(child_conn).os()?.spawn();
    println!("{}", parent_conn.recv()?);
    p.join()??;
    Ok(())
}
