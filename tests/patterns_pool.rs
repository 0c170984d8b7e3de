//! The worker pool, with workers on threads and in OS processes, including a job that panics
//! and a worker whose OS process is killed.

mod common;

use std::collections::BTreeMap;

use common::within;
use csp::patterns::{JobResult, Pool, PoolError, serve_jobs};
use csp::prelude::*;

csp::child_entry!();

fn square(x: u64) -> u64 {
    match x {
        13 => panic!("thirteen is unlucky"),
        99 => {
            // Die the hard way, in the middle of an item.
            let _ = std::process::Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
            std::thread::sleep(common::LIMIT);
            0
        }
        x => x * x,
    }
}

#[process]
fn square_worker(jobs: Reader<u64>, results: Writer<JobResult<u64>>) -> Result<(), csp::Error> {
    serve_jobs(jobs, results, square)?;
    Ok(())
}

#[test]
fn map_keeps_the_items_order_with_workers_in_os_processes() {
    let squares = within("mapping", || {
        let pool = Pool::new(2, |jobs, results| square_worker(jobs, results).os()).unwrap();
        pool.map(0..10u64)
    });
    let squares: Vec<u64> = squares.into_iter().map(Result::unwrap).collect();
    assert_eq!(squares, (0..10u64).map(|x| x * x).collect::<Vec<_>>());
}

/// Results that come back while later items are still being handed over must not close
/// the results early (the last result delivered once dropped the last writer of the results
/// channel before the next item's writer existed, and the rest were lost).
#[test]
fn unordered_results_that_return_while_items_are_submitted_are_all_delivered() {
    let rounds = within("mapping unordered, many times", || {
        let pool = Pool::new(1, |jobs, results| Ok(square_worker(jobs, results))).unwrap();
        (0..200)
            .map(|_| pool.map_unordered(0..12u64).collect::<BTreeMap<_, _>>())
            .collect::<Vec<_>>()
    });
    // (Items below 13: the square job panics on 13.)
    let expected: BTreeMap<usize, JobResult<u64>> =
        (0..12u64).map(|x| (x as usize, Ok(x * x))).collect();
    for (round, results) in rounds.iter().enumerate() {
        assert_eq!(results, &expected, "round {round}");
    }
}

#[test]
fn a_panicking_job_is_reported_for_its_item_and_the_pool_goes_on() {
    let results = within("mapping on threads", || {
        let pool = Pool::new(2, |jobs, results| Ok(square_worker(jobs, results))).unwrap();
        let results = pool.map([12, 13, 14]);
        let after = pool.apply(3).get();
        (results, after)
    });
    assert_eq!(results.0[0], Ok(144));
    assert_eq!(
        results.0[1],
        Err(PoolError::Panicked("thirteen is unlucky".into()))
    );
    assert_eq!(results.0[2], Ok(196));
    assert_eq!(results.1, Ok(9));
}

#[test]
fn a_worker_killed_mid_item_is_reported_for_that_item_and_replaced() {
    let (results, unordered) = within("mapping with a death", || {
        let pool = Pool::new(2, |jobs, results| square_worker(jobs, results).os()).unwrap();
        let results = pool.map([2, 99, 4, 5]);
        // Both workers still serve: the dead one was replaced.
        let unordered: BTreeMap<usize, JobResult<u64>> = pool.map_unordered(0..6u64).collect();
        (results, unordered)
    });
    assert_eq!(results[0], Ok(4));
    match &results[1] {
        Err(PoolError::WorkerDied(why)) => assert!(why.contains("SIGKILL"), "{why}"),
        other => panic!("expected the worker's death, got {other:?}"),
    }
    assert_eq!((&results[2], &results[3]), (&Ok(16), &Ok(25)));
    let expected: BTreeMap<usize, JobResult<u64>> =
        (0..6u64).map(|x| (x as usize, Ok(x * x))).collect();
    assert_eq!(unordered, expected);
}
