//! Queues, in threads and across OS processes.

mod common;

use std::time::Duration;

use common::{LIMIT, kill_9, within};
use csp::patterns::{PatternError, Queue};
use csp::prelude::*;

csp::child_entry!();

#[process]
fn put_range(queue: Queue<u64>, from: u64, count: u64) -> Result<(), String> {
    for n in from..from + count {
        queue.put(n).map_err(|error| error.to_string())?;
    }
    Ok(())
}

#[process]
fn take(queue: Queue<u64>, count: usize) -> Result<Vec<u64>, String> {
    (0..count)
        .map(|_| queue.get().map_err(|error| error.to_string()))
        .collect()
}

#[test]
fn three_os_processes_put_into_one_queue_and_nothing_is_lost_or_duplicated() {
    let queue = Queue::new();
    let producers: Vec<_> = (0..3)
        .map(|k| put_range(queue.clone(), k * 100, 20).os().unwrap())
        .collect();
    Parallel::of(producers).run_timeout(LIMIT).unwrap();
    let mut got = within("draining", move || {
        (0..60).map(|_| queue.get().unwrap()).collect::<Vec<_>>()
    });
    got.sort_unstable();
    let expected: Vec<u64> = (0..3).flat_map(|k| k * 100..k * 100 + 20).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_consumer_in_a_child_gets_items_in_fifo_order() {
    let queue = Queue::bounded(2);
    let consumer = take(queue.clone(), 10).os().unwrap().spawn();
    within("putting", move || {
        for n in 0..10 {
            queue.put(n).unwrap();
        }
    });
    let got = consumer.join_timeout(LIMIT).unwrap().unwrap();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}

#[test]
fn timeouts_and_non_blocking_forms_report_empty_and_full_and_hand_items_back() {
    within("timeouts", || {
        let queue = Queue::bounded(1);
        assert_eq!(queue.try_get(), Err(PatternError::Empty));
        assert_eq!(
            queue.get_timeout(Duration::from_millis(20)),
            Err(PatternError::Empty)
        );
        queue.put(1u32).unwrap();
        assert!(queue.is_full().unwrap());
        let error = queue.try_put(2).unwrap_err();
        assert!(error.is_full());
        assert_eq!(error.into_value(), Some(2));
        let error = queue.put_timeout(3, Duration::from_millis(20)).unwrap_err();
        assert!(error.is_full());
        assert_eq!(error.into_value(), Some(3));
        assert_eq!(queue.len().unwrap(), 1);
        assert_eq!(queue.get().unwrap(), 1);
    });
}

#[process]
fn put_then_die(queue: Queue<u64>, count: u64) -> Result<(), String> {
    for n in 0..count {
        queue.put(n).map_err(|error| error.to_string())?;
    }
    std::process::abort(); // every put above returned
}

#[process]
fn get_forever(queue: Queue<u64>, pids: Writer<u32>) -> Result<u64, String> {
    pids.write(std::process::id())
        .map_err(|error| error.to_string())?;
    queue.get().map_err(|error| error.to_string())
}

/// One client's death ends nothing for the others: a producer that dies keeps every item it
/// put, and a consumer killed while it waits in `get` takes no item with it.
#[test]
fn a_client_that_dies_neither_breaks_the_queue_nor_takes_an_item_with_it() {
    let queue = Queue::new();
    let died = put_then_die(queue.clone(), 100)
        .os()
        .unwrap()
        .run_timeout(LIMIT);
    assert!(
        matches!(died, Err(csp::RunError::ChildDied { .. })),
        "{died:?}"
    );
    let got = within("draining", {
        let queue = queue.clone();
        move || (0..100).map(|_| queue.get().unwrap()).collect::<Vec<_>>()
    });
    assert_eq!(got, (0..100).collect::<Vec<_>>(), "every put that returned");

    let pids = Channel::new();
    let consumer = get_forever(queue.clone(), pids.writer())
        .os()
        .unwrap()
        .spawn();
    let pid = pids.reader().read_timeout(LIMIT).unwrap();
    // Let its get reach the queue's home, then kill it there.
    std::thread::sleep(Duration::from_millis(50));
    kill_9(pid);
    assert!(consumer.join_timeout(LIMIT).is_err());
    queue.put(7).unwrap();
    assert_eq!(
        queue.get_timeout(LIMIT),
        Ok(7),
        "the item went to a live consumer"
    );
    assert_eq!(queue.len(), Ok(0));
}

/// Takes a writer from the queue and drops it, then waits, on another thread, for `done`:
/// the thread that took the writer makes no further request.
#[process]
fn take_a_writer_and_drop_it(queue: Queue<Writer<u32>>, done: Reader<()>) -> Result<(), String> {
    drop(queue.get().map_err(|error| error.to_string())?);
    let waiting = std::thread::spawn(move || done.read().map_err(|error| error.to_string()));
    waiting
        .join()
        .map_err(|_| "the waiting thread panicked".to_string())?
}

/// A channel end taken from a queue by a child and dropped there goes at once: the value
/// sent is not kept beside the encoding kept to put back if the child died unread.
#[test]
fn an_end_taken_from_a_queue_by_a_child_and_dropped_there_retires_its_channel_at_once() {
    let (handed, done) = (Channel::<u32>::named("handed over"), Channel::named("done"));
    let (reader, finish) = (handed.reader(), done.writer());
    let queue = Queue::new();
    queue.put(handed.writer()).unwrap();
    drop(handed);
    let child = take_a_writer_and_drop_it(queue.clone(), done.reader())
        .os()
        .unwrap()
        .spawn();
    drop(done);
    let ended = reader.read_timeout(Duration::from_secs(5));
    assert!(
        common::retired(&ended),
        "the child's drop retires the channel while the child lives: {ended:?}"
    );
    finish.write(()).unwrap();
    assert!(matches!(child.join_timeout(LIMIT), Ok(Ok(()))));
}
