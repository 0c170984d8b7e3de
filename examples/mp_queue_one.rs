//! The fourth seed's queue program: the parent puts 1 into a queue and a child OS process
//! prints what it gets.
//!
//! ```python
//! def worker(q):
//!     i = q.get(); print(i)
//! queue = multiprocessing.Queue()
//! p = Process(target=worker, args=(queue,)); p.start(); queue.put(1); queue.close(); p.join()
//! ```
//!
//! Run: `cargo run --example mp_queue_one`. Prints `1`.

use csp::patterns::Queue;
use csp::prelude::*;

#[process]
fn worker(q: Queue<i32>) -> Result<(), String> {
    let i = q.get().map_err(|error| error.to_string())?;
    println!("{i}");
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = Queue::new();
    let p = worker(queue.clone()).os()?.spawn();
    queue.put(1).map_err(|error| error.to_string())?;
    p.join()??;
    Ok(())
}
