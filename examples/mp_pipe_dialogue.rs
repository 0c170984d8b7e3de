//! The fifth seed's pipe dialogue: a child OS process says "Hi daddy!" through a duplex pipe,
//! the parent answers "Hi child!", and the child prints the answer.
//!
//! ```python
//! def func1(conn):
//!     conn.send("Hi daddy!")
//!     response = conn.recv()
//!     print("respnse:%s" % (response))
//!     conn.close()
//! parent_conn, child_conn = multiprocessing.Pipe()
//! p = Process(target=func1, args=(child_conn,)); p.start()
//! print(parent_conn.recv()); parent_conn.send("Hi child!"); p.join()
//! ```
//!
//! Run: `cargo run --example mp_pipe_dialogue`. Prints `Hi daddy!` then `respnse:Hi child!`
//! (the seed's spelling).

use csp::patterns::{PipeEnd, pipe};
use csp::prelude::*;

#[process]
fn func1(conn: PipeEnd<String>) -> Result<(), String> {
    conn.send("Hi daddy!".into())
        .map_err(|error| error.to_string())?;
    let response = conn.recv().map_err(|error| error.to_string())?;
    println!("respnse:{response}");
    conn.close();
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (parent_conn, child_conn) = pipe();
    let p = func1(child_conn).os()?.spawn();
    println!("{}", parent_conn.recv()?);
    parent_conn
        .send("Hi child!".into())
        .map_err(|error| error.to_string())?;
    p.join()??;
    Ok(())
}
