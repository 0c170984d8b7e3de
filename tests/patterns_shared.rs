//! Shared state served by a manager, used from threads and from child OS processes.

mod common;

use common::{LIMIT, within};
use csp::patterns::{Manager, Namespace, PatternError, SharedDict, SharedList, SharedValue};
use csp::prelude::*;

csp::child_entry!();

#[process]
fn add_record(records: SharedList<String>, record: String) -> Result<(), String> {
    records.push(record).map_err(|e| e.to_string())
}

#[process]
fn fill(dict: SharedDict<u32, u32>, list: SharedList<u32>, n: u32) -> Result<(), String> {
    dict.insert(n, n * n).map_err(|e| e.to_string())?;
    list.push(n).map_err(|e| e.to_string())
}

#[process]
fn bump(counter: SharedValue<u64>, times: u32) -> Result<(), String> {
    for _ in 0..times {
        counter
            .update(|cell| cell.0 += 1)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[process]
fn change_namespace(ns: Namespace<i64>) -> Result<(), String> {
    ns.update(|attributes| {
        *attributes.get_mut("x").expect("x") += 5;
        *attributes.get_mut("y").expect("y") *= 10;
    })
    .map_err(|e| e.to_string())
}

#[test]
fn a_record_added_by_a_child_is_seen_by_the_parent() {
    let manager = Manager::new();
    let records = manager.list(vec!["first".to_string()]);
    add_record(records.clone(), "new".into())
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!(records.snapshot().unwrap(), ["first", "new"]);
}

#[test]
fn ten_os_processes_fill_a_shared_dict_and_list() {
    let manager = Manager::new();
    let (dict, list) = (manager.dict(), manager.list(Vec::new()));
    let fillers: Vec<_> = (0..10)
        .map(|n| fill(dict.clone(), list.clone(), n).os().unwrap())
        .collect();
    run_all(fillers);
    let expected: Vec<(u32, u32)> = (0..10).map(|n| (n, n * n)).collect();
    assert_eq!(
        dict.snapshot().unwrap().into_iter().collect::<Vec<_>>(),
        expected
    );
    let mut numbers = list.snapshot().unwrap();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..10).collect::<Vec<_>>());
}

#[test]
fn compound_updates_from_several_os_processes_are_atomic() {
    let counter = SharedValue::new(0u64);
    let bumpers: Vec<_> = (0..3)
        .map(|_| bump(counter.clone(), 50).os().unwrap())
        .collect();
    run_all(bumpers);
    assert_eq!(counter.get().unwrap(), 150, "no increment was lost");
}

/// Runs every process at once, bounded, and checks each succeeded.
fn run_all(processes: Vec<Process<Result<(), String>>>) {
    for result in Parallel::of(processes).run_timeout(LIMIT).unwrap() {
        result.unwrap();
    }
}

#[test]
fn a_namespace_changed_by_a_child_reads_back_changed() {
    let manager = Manager::new();
    let ns = manager.namespace();
    ns.insert("x".to_string(), 1).unwrap();
    ns.insert("y".to_string(), 1).unwrap();
    assert_eq!(
        (ns.attribute("x").unwrap(), ns.attribute("y").unwrap()),
        (1, 1)
    );
    change_namespace(ns.clone())
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!(
        (ns.attribute("x").unwrap(), ns.attribute("y").unwrap()),
        (6, 10)
    );
    assert_eq!(ns.attribute("z"), Err(PatternError::NoSuchKey("z".into())));
}

#[test]
fn list_misuse_is_an_error_and_state_ends_with_its_manager() {
    within("lists", || {
        let manager = Manager::new();
        let list = manager.list(vec![1, 2, 3]);
        assert_eq!(
            list.get(5),
            Err(PatternError::OutOfRange {
                index: 5,
                length: 3
            })
        );
        assert_eq!(list.set(0, 9).unwrap(), 1);
        assert_eq!(list.remove(1).unwrap(), 2);
        list.insert(0, 7).unwrap();
        assert_eq!(list.pop().unwrap(), Some(3));
        assert_eq!(list.snapshot().unwrap(), [7, 9]);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            list.update(|items| {
                items.clear();
                panic!("a change that fails half-way");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(
            list.snapshot().unwrap(),
            [7, 9],
            "a failed update changes nothing"
        );
        drop(manager);
        assert!(matches!(list.len(), Err(PatternError::Gone { .. })));
    });
}
