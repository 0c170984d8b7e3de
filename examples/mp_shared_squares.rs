//! The third seed's shared-memory program: a child OS process writes the squares of a list
//! into a shared array and their sum into a shared value; both processes print them.
//!
//! ```python
//! def square_list(mylist, result, square_sum):
//!     for idx, num in enumerate(mylist):
//!         result[idx] = num * num
//!     square_sum.value = sum(result)
//!     print("Result(in process p1): {}".format(result[:]))
//!     print("Sum of squares(in process p1): {}".format(square_sum.value))
//! result = Array('i', 4); square_sum = Value('i')
//! ```
//!
//! Run: `cargo run --example mp_shared_squares`. Both processes print `[1, 4, 9, 16]` and 30.

#[path = "common/py.rs"]
mod py;

use csp::patterns::{SharedArray, SharedValue};
use csp::prelude::*;

#[process]
fn square_list(
    mylist: Vec<i32>,
    result: SharedArray<i32>,
    square_sum: SharedValue<i32>,
) -> Result<(), String> {
    let failed = |error: csp::patterns::PatternError| error.to_string();
    for (idx, num) in mylist.iter().enumerate() {
        result.set(idx, num * num).map_err(failed)?;
    }
    let squares = result.snapshot().map_err(failed)?;
    square_sum.set(squares.iter().sum()).map_err(failed)?;
    println!("Result(in process p1): {}", py::list(&squares));
    println!(
        "Sum of squares(in process p1): {}",
        square_sum.get().map_err(failed)?
    );
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mylist = vec![1, 2, 3, 4];
    let result = SharedArray::new(vec![0; 4]);
    let square_sum = SharedValue::new(0);
    square_list(mylist, result.clone(), square_sum.clone())
        .os()?
        .run()??;
    println!("Result(in main program): {}", py::list(&result.snapshot()?));
    println!("Sum of squares(in main program): {}", square_sum.get()?);
    Ok(())
}
