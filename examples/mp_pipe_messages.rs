//! The third seed's pipe program: a sender OS process sends messages through a pipe until
//! "END"; a receiver OS process prints them until it sees "END".
//!
//! ```python
//! def sender(conn, msgs):
//!     for msg in msgs:
//!         conn.send(msg); print("Sent the message: {}".format(msg))
//!     conn.close()
//! def receiver(conn):
//!     while 1:
//!         msg = conn.recv()
//!         if msg == "END": break
//!         print("Received the message: {}".format(msg))
//! ```
//!
//! Run: `cargo run --example mp_pipe_messages`. The two processes race, so their lines
//! interleave differently from run to run; each one's own lines keep their order.

use csp::patterns::{PipeEnd, pipe};
use csp::prelude::*;

#[process]
fn sender(conn: PipeEnd<String>, msgs: Vec<String>) -> Result<(), String> {
    for msg in msgs {
        let shown = msg.clone();
        conn.send(msg).map_err(|error| error.to_string())?;
        println!("Sent the message: {shown}");
    }
    conn.close();
    Ok(())
}

#[process]
fn receiver(conn: PipeEnd<String>) -> Result<(), String> {
    loop {
        let msg = conn.recv().map_err(|error| error.to_string())?;
        if msg == "END" {
            return Ok(());
        }
        println!("Received the message: {msg}");
    }
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let msgs = ["hello", "hey", "hru?", "END"].map(String::from).to_vec();
    let (parent_conn, child_conn) = pipe();
    let (sent, received) =
        parallel![sender(parent_conn, msgs).os()?, receiver(child_conn).os()?].run()?;
    sent?;
    received?;
    Ok(())
}
