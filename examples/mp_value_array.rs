//! The seeds' Value and Array program: a child OS process sets a shared value and negates a
//! shared array.
//!
//! ```python
//! def f(n, a):
//!     n.value = 3.1415927
//!     for i in range(len(a)):
//!         a[i] = -a[i]
//! num = Value('d', 0.0); arr = Array('i', range(10))
//! p = Process(target=f, args=(num, arr)); p.start(); p.join(); print(num.value); print(arr[:])
//! ```
//!
//! Run: `cargo run --example mp_value_array`. Prints `3.1415927` and
//! `[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]`.

#[path = "common/py.rs"]
mod py;

use csp::patterns::{SharedArray, SharedValue};
use csp::prelude::*;

#[process]
#[allow(clippy::approx_constant)] // the seed's own literal, printed as the seed prints it
fn f(n: SharedValue<f64>, a: SharedArray<i32>) -> Result<(), String> {
    n.set(3.1415927).map_err(|error| error.to_string())?;
    let length = a.len().map_err(|error| error.to_string())?;
    for i in 0..length {
        let value = a.get(i).map_err(|error| error.to_string())?;
        a.set(i, -value).map_err(|error| error.to_string())?;
    }
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let num = SharedValue::new(0.0);
    let arr = SharedArray::new((0..10).collect());
    f(num.clone(), arr.clone()).os()?.run()??;
    println!("{}", num.get()?);
    println!("{}", py::list(&arr.snapshot()?));
    Ok(())
}
