//! The fourth seed's pipe program: the parent sends 1 through a pipe and a child OS process
//! prints what it receives.
//!
//! ```python
//! def worker(conn):
//!     i = conn.recv(); print(i); conn.close()
//! parent_conn, child_conn = Pipe()
//! p = Process(target=worker, args=(child_conn,)); p.start(); parent_conn.send(1); p.join()
//! ```
//!
//! Run: `cargo run --example mp_pipe_one`. Prints `1`.

use csp::patterns::{PipeEnd, pipe};
use csp::prelude::*;

#[process]
fn worker(conn: PipeEnd<i32>) -> Result<(), String> {
    let i = conn.recv().map_err(|error| error.to_string())?;
    println!("{i}");
    conn.close();
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (parent_conn, child_conn) = pipe();
    let p = worker(child_conn).os()?.spawn();
    parent_conn.send(1).map_err(|error| error.to_string())?;
    p.join()??;
    Ok(())
}
