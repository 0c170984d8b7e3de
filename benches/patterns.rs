//! `csp::patterns` (Python-multiprocessing-style primitives built as channel patterns) against
//! Python 3.11's `multiprocessing` doing the same work, side by side in one run. Prints a
//! Markdown table of medians and ratios.
//!
//! In every workload the work is done in a child OS process (`.os()` here, a
//! `multiprocessing.Process` with the 'spawn' start method in Python), and the server or
//! state is owned by the parent, as with a Python `Manager`.
//!
//! Run: `cargo bench --bench patterns` (needs `python3`).

mod common;

use std::collections::HashMap;
use std::time::Instant;

use common::{REPEATS, median, micros};

use csp::patterns::{Barrier, Lock, Manager, Queue, SharedDict, SharedList};
use csp::prelude::*;

/// Operations per measurement, by workload; passed to the Python peer too.
const QUEUE_ITEMS: u32 = 50_000;
const LIST_APPENDS: u32 = 5_000;
const DICT_SETS: u32 = 5_000;
const LOCK_PAIRS: u32 = 4_000;
const BARRIER_CYCLES: u32 = 2_000;

/// Puts one warm-up item, then `count` items.
#[process]
fn queue_producer(queue: Queue<u64>, count: u32) -> Result<(), String> {
    for n in 0..=u64::from(count) {
        queue.put(n).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Appends `count` items after a warm-up one; returns the seconds the `count` took.
#[process]
fn list_appender(list: SharedList<u64>, count: u32) -> Result<f64, String> {
    list.push(0).map_err(|e| e.to_string())?;
    let started = Instant::now();
    for n in 0..u64::from(count) {
        list.push(n).map_err(|e| e.to_string())?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Sets `count` keys after a warm-up one; returns the seconds the `count` took.
#[process]
fn dict_setter(dict: SharedDict<u64, u64>, count: u32) -> Result<f64, String> {
    dict.insert(u64::from(count), 0)
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    for n in 0..u64::from(count) {
        dict.insert(n, n).map_err(|e| e.to_string())?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Takes and gives back the lock once, says it is ready, then `count` times, timed.
#[process]
fn lock_contender(lock: Lock, ready: Writer<()>, count: u32) -> Result<f64, String> {
    lock.acquire().map_err(|e| e.to_string())?;
    lock.release().map_err(|e| e.to_string())?;
    ready.write(()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    for _ in 0..count {
        lock.acquire().map_err(|e| e.to_string())?;
        lock.release().map_err(|e| e.to_string())?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Waits once (warm-up, and both parties start together), then `count` times, timed.
#[process]
fn barrier_party(barrier: Barrier, count: u32) -> Result<f64, String> {
    barrier.wait().map_err(|e| e.to_string())?;
    let started = Instant::now();
    for _ in 0..count {
        barrier.wait().map_err(|e| e.to_string())?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Seconds per item the parent gets of what a child puts, from first get to last.
fn queue_rate(count: u32) -> f64 {
    let queue = Queue::<u64>::new();
    let child = queue_producer(queue.clone(), count).os().unwrap().spawn();
    queue.get().unwrap(); // the warm-up item: the child is running
    let started = Instant::now();
    for _ in 0..count {
        queue.get().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    child.join().unwrap().unwrap();
    elapsed / f64::from(count)
}

/// Seconds per append by a child to a list served by the parent's manager.
fn list_rate(count: u32) -> f64 {
    let manager = Manager::new();
    let list = manager.list(Vec::new());
    let elapsed = list_appender(list.clone(), count)
        .os()
        .unwrap()
        .run()
        .unwrap()
        .unwrap();
    assert_eq!(list.len().unwrap(), count as usize + 1);
    elapsed / f64::from(count)
}

/// Seconds per set by a child in a dict served by the parent's manager.
fn dict_rate(count: u32) -> f64 {
    let manager = Manager::new();
    let dict = manager.dict();
    let elapsed = dict_setter(dict.clone(), count)
        .os()
        .unwrap()
        .run()
        .unwrap()
        .unwrap();
    assert_eq!(dict.len().unwrap(), count as usize + 1);
    elapsed / f64::from(count)
}

/// Seconds per acquire/release pair in the child, the parent contending for the same lock.
fn lock_rate(count: u32) -> f64 {
    let lock = Lock::new();
    let ready = Channel::<()>::new();
    let child = lock_contender(lock.clone(), ready.writer(), count)
        .os()
        .unwrap()
        .spawn();
    let reader = ready.reader();
    drop(ready);
    reader.read().unwrap();
    for _ in 0..count {
        lock.acquire().unwrap();
        lock.release().unwrap();
    }
    let elapsed = child.join().unwrap().unwrap();
    elapsed / f64::from(count)
}

/// Seconds per cycle of a 2-party barrier, parent and child, timed in the child.
fn barrier_rate(count: u32) -> f64 {
    let barrier = Barrier::new(2);
    let child = barrier_party(barrier.clone(), count).os().unwrap().spawn();
    for _ in 0..=count {
        barrier.wait().unwrap();
    }
    let elapsed = child.join().unwrap().unwrap();
    elapsed / f64::from(count)
}

fn python_runs() -> Option<HashMap<String, f64>> {
    let counts = format!(
        "{{\"queue\": {QUEUE_ITEMS}, \"list\": {LIST_APPENDS}, \"dict\": {DICT_SETS}, \
         \"lock\": {LOCK_PAIRS}, \"barrier\": {BARRIER_CYCLES}}}"
    );
    common::python_medians("mp_patterns.py", &counts)
}

/// One row of the table: what is measured, and how.
struct Workload {
    label: &'static str,
    /// The Python peer's key; the second is a second Python column, if any.
    keys: (&'static str, Option<&'static str>),
    count: u32,
    run: fn(u32) -> f64,
    /// The target for python / csp, if it sets one.
    target: Option<f64>,
}

#[csp::main]
fn main() {
    let workloads = [
        Workload {
            label: "queue put→get, per item (`Queue<u64>` vs `mp.Queue`)",
            keys: ("queue", None),
            count: QUEUE_ITEMS,
            run: queue_rate,
            target: Some(5.0),
        },
        Workload {
            label: "manager list append (`SharedList` vs `Manager().list()`)",
            keys: ("list", None),
            count: LIST_APPENDS,
            run: list_rate,
            target: Some(10.0),
        },
        Workload {
            label: "manager dict set (`SharedDict` vs `Manager().dict()`)",
            keys: ("dict", None),
            count: DICT_SETS,
            run: dict_rate,
            target: Some(10.0),
        },
        Workload {
            label: "lock acquire+release, contended (`Lock` vs `mp.Lock` / `Manager().Lock()`)",
            keys: ("lock", Some("manager_lock")),
            count: LOCK_PAIRS,
            run: lock_rate,
            target: None,
        },
        Workload {
            label: "2-party barrier cycle (`Barrier` vs `mp.Barrier`)",
            keys: ("barrier", None),
            count: BARRIER_CYCLES,
            run: barrier_rate,
            target: None,
        },
    ];
    // `CSP_PROFILE=list` (a Python key) runs only that workload, for a profiler or an A/B.
    if let Ok(key) = std::env::var("CSP_PROFILE") {
        let workload = workloads
            .iter()
            .find(|workload| workload.keys.0 == key)
            .expect("CSP_PROFILE names a workload: queue, list, dict, lock or barrier");
        let csp = median(
            (0..REPEATS)
                .map(|_| (workload.run)(workload.count))
                .collect(),
        );
        println!(
            "{key}: {} us per operation (median of {REPEATS})",
            micros(csp)
        );
        return;
    }
    println!(
        "Measuring {REPEATS} repeats of each; medians (us per operation) and ratios \
         (python / csp: > 1 means csp is faster).\n"
    );
    let python = python_runs();
    println!(
        "| workload | N | csp | Python | Python / csp | Python `Manager().Lock()` | Manager lock / csp | target |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for workload in &workloads {
        let csp = median(
            (0..REPEATS)
                .map(|_| (workload.run)(workload.count))
                .collect(),
        );
        let py = |key: Option<&str>| {
            key.and_then(|key| python.as_ref().and_then(|p| p.get(key).copied()))
        };
        let (first, second) = (py(Some(workload.keys.0)), py(workload.keys.1));
        let show = |v: Option<f64>| v.map_or("n/a".to_string(), micros);
        let ratio = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.2}x", v / csp));
        let target = match (workload.target, first) {
            (Some(target), Some(python)) => format!(
                "≥ {target}x: {}",
                if python / csp >= target {
                    "met"
                } else {
                    "NOT met"
                }
            ),
            (Some(target), None) => format!("≥ {target}x: n/a"),
            (None, _) => "-".to_string(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            workload.label,
            workload.count,
            micros(csp),
            show(first),
            ratio(first),
            if workload.keys.1.is_some() {
                show(second)
            } else {
                "-".to_string()
            },
            if workload.keys.1.is_some() {
                ratio(second)
            } else {
                "-".to_string()
            },
            target,
        );
    }
}
