//! The fifth seed's queue program: three OS processes each put `n + 1` into one queue; the
//! parent gets three items.
//!
//! ```python
//! def func1(que, n):
//!     que.put(n + 1)
//!     print("son process queue ID is %s:" % id(que))
//! q1 = multiprocessing.Queue()
//! for i in range(3):
//!     p = multiprocessing.Process(target=func1, args=(q1, i)); p.start()
//! print(q1.get()); print(q1.get()); print(q1.get())
//! ```
//!
//! Python's `id()` of the queue has no counterpart (each handle is a client of one server);
//! the children say which OS process they are instead. Run:
//! `cargo run --example mp_queue_three`. Prints 1, 2 and 3, in the order the children race.

use csp::patterns::Queue;
use csp::prelude::*;

#[process]
fn func1(que: Queue<u32>, n: u32) -> Result<(), String> {
    que.put(n + 1).map_err(|error| error.to_string())?;
    println!("son process {} put {}", std::process::id(), n + 1);
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q1 = Queue::new();
    let children: Vec<_> = (0..3)
        .map(|i| func1(q1.clone(), i).os().map(Process::spawn))
        .collect::<Result<_, _>>()?;
    for _ in 0..3 {
        println!("{}", q1.get()?);
    }
    for child in children {
        child.join()??;
    }
    Ok(())
}
