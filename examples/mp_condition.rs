//! The fourth seed's condition program: two OS processes append 0 to 9 to a shared list,
//! notifying a condition after each; a third waits on the condition until the list is not
//! empty, then pops an item and prints it.
//!
//! ```python
//! def producer(q, c):            # the seed's names: this one consumes
//!     c.acquire()
//!     while len(q) == 0:
//!         c.wait()
//!     i = q.pop(); print(i); c.release()
//! def consumer(q, c):            # and this one produces
//!     for i in range(10):
//!         c.acquire(); q.append(i); c.notify_all(); c.release(); time.sleep(1)
//! ```
//!
//! Two differences, both deliberate: in the seed `queue = []` is a plain list, which each
//! Python child gets its own copy of (so its consumer would wait for ever); here it is a
//! shared list, as the program means. And the pause between appends is 10 ms, not a second.
//!
//! Run: `cargo run --example mp_condition`. Prints one number from 0 to 9 (almost always 0:
//! the first append wakes the waiter).

use std::time::Duration;

use csp::patterns::{Condition, PatternError, SharedList};
use csp::prelude::*;

fn failed(error: PatternError) -> String {
    error.to_string()
}

#[process]
fn producer(q: SharedList<i32>, c: Condition) -> Result<(), String> {
    c.acquire().map_err(failed)?;
    while q.is_empty().map_err(failed)? {
        c.wait().map_err(failed)?;
    }
    let i = q.pop().map_err(failed)?.expect("not empty under the lock");
    println!("{i}");
    c.release().map_err(failed)
}

#[process]
fn consumer(q: SharedList<i32>, c: Condition) -> Result<(), String> {
    for i in 0..10 {
        c.acquire().map_err(failed)?;
        q.push(i).map_err(failed)?;
        c.notify_all().map_err(failed)?;
        c.release().map_err(failed)?;
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = SharedList::new(Vec::new());
    let cond = Condition::new();
    let (p1, p2, q) = parallel![
        consumer(queue.clone(), cond.clone()).os()?,
        consumer(queue.clone(), cond.clone()).os()?,
        producer(queue.clone(), cond.clone()).os()?,
    ]
    .run()?;
    p1?;
    p2?;
    q?;
    Ok(())
}
