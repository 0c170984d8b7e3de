//! The seeds' Manager program: a list of records lives in the manager; one child OS process
//! adds a record, then another prints them all.
//!
//! ```python
//! with multiprocessing.Manager() as manager:
//!     records = manager.list([('Computers', 1), ('Histoty', 5), ('Hindi', 9)])
//!     p1 = Process(target=insert_record, args=(('English', 3), records))
//!     p2 = Process(target=print_records, args=(records,))
//!     p1.start(); p1.join(); p2.start(); p2.join()
//! ```
//!
//! Run: `cargo run --example mp_manager_records` (the records of the first two seeds), or
//! `cargo run --example mp_manager_records -- geeks` (the third seed's Sam, Adam, Kevin and
//! Jeff, with its "New record added!").

use csp::patterns::{Manager, SharedList};
use csp::prelude::*;

type Record = (String, u32);

#[process]
fn insert_record(record: Record, records: SharedList<Record>, said: String) -> Result<(), String> {
    records.push(record).map_err(|error| error.to_string())?;
    println!("{said}\n");
    Ok(())
}

#[process]
fn print_records(records: SharedList<Record>) -> Result<(), String> {
    for (name, score) in records.snapshot().map_err(|error| error.to_string())? {
        println!("Name: {name}\nScore: {score}\n");
    }
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let geeks = std::env::args().nth(1).as_deref() == Some("geeks");
    let (initial, new_record, said) = if geeks {
        (
            [("Sam", 10), ("Adam", 9), ("Kevin", 9)],
            ("Jeff", 8),
            "New record added!",
        )
    } else {
        (
            [("Computers", 1), ("Histoty", 5), ("Hindi", 9)],
            ("English", 3),
            "A New record is added",
        )
    };
    let manager = Manager::new();
    let records = manager.list(
        initial
            .map(|(name, score)| (name.to_string(), score))
            .to_vec(),
    );
    let new_record = (new_record.0.to_string(), new_record.1);
    let p1 = insert_record(new_record, records.clone(), said.to_string()).os()?;
    let p2 = print_records(records.clone()).os()?;
    let (inserted, printed) = sequence![p1, p2].run()?;
    inserted?;
    printed?;
    Ok(())
}
