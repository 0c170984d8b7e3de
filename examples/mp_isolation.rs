//! The seeds' lesson on isolation: a child OS process squares a list into a global of its
//! own; the parent's global stays empty, because OS processes share no memory.
//!
//! ```python
//! result = []
//! def square_list(mylist):
//!     global result
//!     for num in mylist:
//!         result.append(num * num)
//!     print("Result(in process p1): {}".format(result))
//! p1 = Process(target=square_list, args=([1, 2, 3, 4],)); p1.start(); p1.join()
//! print("Result(in main program): {}".format(result))
//! ```
//!
//! Run: `cargo run --example mp_isolation`. Prints `Result(in process p1): [1, 4, 9, 16]` and
//! `Result(in main program): []`.

#[path = "common/py.rs"]
mod py;

use std::sync::Mutex;

use csp::prelude::*;

static RESULT: Mutex<Vec<i32>> = Mutex::new(Vec::new());

#[process]
fn square_list(mylist: Vec<i32>) {
    let mut result = RESULT.lock().expect("the global list");
    for num in mylist {
        result.push(num * num);
    }
    println!("Result(in process p1): {}", py::list(&result));
}

#[csp::main]
fn main() -> Result<(), csp::RunError> {
    square_list(vec![1, 2, 3, 4]).os()?.run()?;
    let result = RESULT.lock().expect("the global list");
    println!("Result(in main program): {}", py::list(&result));
    Ok(())
}
