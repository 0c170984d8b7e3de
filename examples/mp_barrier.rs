//! The fourth seed's barrier program: two OS processes wait at a barrier of two; each prints
//! the index it got, and the one with index 0 also says it passed.
//!
//! ```python
//! def worker(b):
//!     i = b.wait()
//!     print(i)
//!     if i == 0:
//!         print('passed the barrier')
//! barrier = multiprocessing.Barrier(2)
//! ```
//!
//! Run: `cargo run --example mp_barrier`. Prints `0`, `1` and `passed the barrier`; which
//! process gets which index, and so the order of the lines, is a race.

use csp::patterns::Barrier;
use csp::prelude::*;

#[process]
fn worker(b: Barrier) -> Result<(), String> {
    let i = b.wait().map_err(|error| error.to_string())?;
    if i == 0 {
        // One line per print, written together so the two processes' lines do not split it.
        println!("{i}\npassed the barrier");
    } else {
        println!("{i}");
    }
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let barrier = Barrier::new(2);
    let (p, q) = parallel![worker(barrier.clone()).os()?, worker(barrier.clone()).os()?].run()?;
    p?;
    q?;
    Ok(())
}
