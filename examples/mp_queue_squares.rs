//! The third seed's queue program: one child OS process puts the squares of a list into a
//! queue; when it is done, a second prints the queue's elements until it is empty.
//!
//! ```python
//! def square_list(mylist, q):
//!     for num in mylist:
//!         q.put(num * num)
//! def print_queue(q):
//!     print("Queue elements:")
//!     while not q.empty():
//!         print(q.get())
//!     print("Queue is now empty!")
//! ```
//!
//! Run: `cargo run --example mp_queue_squares`.

use csp::patterns::Queue;
use csp::prelude::*;

#[process]
fn square_list(mylist: Vec<i32>, q: Queue<i32>) -> Result<(), String> {
    for num in mylist {
        q.put(num * num).map_err(|error| error.to_string())?;
    }
    Ok(())
}

#[process]
fn print_queue(q: Queue<i32>) -> Result<(), String> {
    println!("Queue elements:");
    // `try_get` is `while not q.empty(): q.get()` without the race between the two calls.
    while let Ok(item) = q.try_get() {
        println!("{item}");
    }
    println!("Queue is now empty!");
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q = Queue::new();
    let p1 = square_list(vec![1, 2, 3, 4], q.clone()).os()?;
    let p2 = print_queue(q.clone()).os()?;
    let (squared, printed) = sequence![p1, p2].run()?;
    squared?;
    printed?;
    Ok(())
}
