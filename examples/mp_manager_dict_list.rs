//! The fifth seed's Manager program: ten OS processes each set a key of a shared dict and
//! append to a shared list; the parent prints both.
//!
//! ```python
//! def func1(dic_1, list_1, name):
//!     dic_1[name] = 'Test'
//!     list_1.append(name)
//! with multiprocessing.Manager() as manager:
//!     d1 = manager.dict(); l1 = manager.list()
//!     for i in range(10): Process(target=func1, args=(d1, l1, str(i))).start()  # joined
//!     print(d1); print(l1)
//! ```
//!
//! Run: `cargo run --example mp_manager_dict_list`. The dict prints in key order (it is
//! ordered by key); the list in the order the processes raced to append.

#[path = "common/py.rs"]
mod py;

use csp::patterns::{Manager, SharedDict, SharedList};
use csp::prelude::*;
use py::Py;

#[process]
fn func1(
    dic_1: SharedDict<String, String>,
    list_1: SharedList<String>,
    name: String,
) -> Result<(), String> {
    dic_1
        .insert(name.clone(), "Test".into())
        .map_err(|error| error.to_string())?;
    list_1.push(name).map_err(|error| error.to_string())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::new();
    let (d1, l1) = (manager.dict(), manager.list(Vec::new()));
    let processes = (0..10)
        .map(|i| func1(d1.clone(), l1.clone(), i.to_string()).os())
        .collect::<Result<Vec<_>, _>>()?;
    for result in Parallel::of(processes).run()? {
        result?;
    }
    let entries: Vec<String> = d1
        .snapshot()?
        .into_iter()
        .map(|(key, value)| format!("{}: {}", Py::Str(key), Py::Str(value)))
        .collect();
    println!("{{{}}}", entries.join(", "));
    let list = Py::List(l1.snapshot()?.into_iter().map(Py::Str).collect());
    println!("{list}");
    Ok(())
}
