//! The PyCSP example from the seed documents, in Rust.
//!
//! ```python
//! @process
//! def P1():
//!     time.sleep(1)
//!     print('P1 exiting')
//! @process
//! def P2():
//!     time.sleep(1)
//!     print('P2 exiting')
//! Parallel(P1(), P2())
//! print('Terminating')
//! ```
//!
//! Run: `cargo run --example pycsp_parallel`. The two processes race, so their lines come in
//! either order; "Terminating" always comes last, because `Parallel` waits for both.

use std::time::Duration;

use csp::prelude::*;

#[process]
fn p1() {
    std::thread::sleep(Duration::from_secs(1));
    println!("P1 exiting");
}

#[process]
fn p2() {
    std::thread::sleep(Duration::from_secs(1));
    println!("P2 exiting");
}

fn main() -> Result<(), csp::RunError> {
    parallel![p1(), p2()].run()?;
    println!("Terminating");
    Ok(())
}
