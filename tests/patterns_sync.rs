//! Locks, semaphores, events and barriers, in threads and across OS processes, including a
//! client OS process killed while it holds a lock or waits in a barrier.

mod common;

use std::time::Duration;

use common::{LIMIT, join, start, within};
use csp::RunError;
use csp::patterns::{
    Barrier, BoundedSemaphore, CspBarrier, Event, Lock, PatternError, RLock, Semaphore,
};
use csp::prelude::*;

csp::child_entry!();

/// Takes the lock, says so, then dies by SIGKILL while holding it.
#[process]
fn hold_and_die(lock: Lock, held: Writer<()>) -> Result<(), String> {
    assert!(lock.acquire().map_err(|e| e.to_string())?);
    held.write(()).map_err(|e| e.to_string())?;
    std::process::Command::new("kill")
        .args(["-9", &std::process::id().to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(LIMIT); // never reached: the signal ends the process
    Ok(())
}

#[test]
fn a_lock_held_by_a_killed_os_process_is_released_to_the_next_waiter() {
    let lock = Lock::new();
    let held = Channel::new();
    let child = hold_and_die(lock.clone(), held.writer())
        .os()
        .unwrap()
        .spawn();
    let reader = held.reader();
    within("the child takes the lock", move || reader.read().unwrap());
    assert!(!lock.try_acquire().unwrap(), "the child holds it");
    let acquired = within("waiting for the dead owner's lock", move || lock.acquire());
    assert_eq!(acquired, Ok(true));
    match child.join_timeout(LIMIT) {
        Err(RunError::ChildDied { status, .. }) => assert_eq!(status, "killed by SIGKILL"),
        other => panic!("expected the child's death, got {other:?}"),
    }
}

#[process]
fn wait_in_barrier(barrier: Barrier) -> Result<usize, String> {
    barrier.wait().map_err(|e| e.to_string())
}

#[process]
fn wait_then_die(barrier: Barrier, waiting: Writer<()>) {
    waiting.write(()).unwrap();
    let killer = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(50));
        std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status()
    });
    let _ = barrier.wait();
    let _ = killer.join();
}

#[test]
fn a_party_killed_while_it_waits_breaks_the_barrier_instead_of_wedging_it() {
    let barrier = Barrier::new(3);
    let waiting = Channel::new();
    let dying = wait_then_die(barrier.clone(), waiting.writer())
        .os()
        .unwrap()
        .spawn();
    let reader = waiting.reader();
    within("the child reaches the barrier", move || {
        reader.read().unwrap()
    });
    // Two parties of three: the third never comes, the dying one breaks it.
    let result = within("waiting in the barrier", move || barrier.wait());
    assert_eq!(result, Err(PatternError::BrokenBarrier));
    assert!(dying.join_timeout(LIMIT).is_err());
}

#[test]
fn barrier_parties_in_two_os_processes_get_distinct_indices() {
    let barrier = Barrier::new(3);
    let (a, b, c) = parallel![
        wait_in_barrier(barrier.clone()).os().unwrap(),
        wait_in_barrier(barrier.clone()).os().unwrap(),
        wait_in_barrier(barrier.clone()),
    ]
    .run_timeout(LIMIT)
    .unwrap();
    let mut indices = vec![a.unwrap(), b.unwrap(), c.unwrap()];
    indices.sort_unstable();
    assert_eq!(indices, [0, 1, 2]);
}

#[test]
fn a_barrier_wait_that_times_out_breaks_it_until_reset() {
    within("barrier timeouts", || {
        let barrier = Barrier::new(2);
        assert_eq!(
            barrier.wait_timeout(Duration::from_millis(20)),
            Err(PatternError::BrokenBarrier)
        );
        assert!(barrier.is_broken().unwrap());
        assert_eq!(barrier.wait(), Err(PatternError::BrokenBarrier));
        barrier.reset().unwrap();
        assert!(!barrier.is_broken().unwrap());
        let other = barrier.clone();
        let waiting = start(move || other.wait());
        while barrier.n_waiting().unwrap() == 0 {
            std::thread::yield_now();
        }
        barrier.abort().unwrap();
        assert_eq!(
            join("the aborted waiter", waiting),
            Err(PatternError::BrokenBarrier)
        );
    });
}

#[test]
fn lock_misuse_is_an_error_and_timeouts_give_false() {
    within("lock misuse", || {
        let lock = Lock::new();
        let other = lock.clone();
        assert_eq!(
            lock.release()
                .map_err(|e| matches!(e, PatternError::Misuse(_))),
            Err(true)
        );
        assert!(lock.acquire().unwrap());
        assert!(!other.acquire_timeout(Duration::from_millis(20)).unwrap());
        assert!(other.release().is_err(), "a non-owner cannot release");
        drop(lock); // leaving while holding releases
        assert!(other.acquire_timeout(LIMIT).unwrap());
    });
}

#[test]
fn an_rlock_is_reentrant_for_its_owner_only() {
    within("rlock", || {
        let lock = RLock::new();
        let other = lock.clone();
        assert!(lock.acquire().unwrap() && lock.acquire().unwrap());
        assert!(!other.try_acquire().unwrap());
        assert!(other.release().is_err());
        lock.release().unwrap();
        assert!(!other.try_acquire().unwrap(), "still held once");
        lock.release().unwrap();
        assert!(other.try_acquire().unwrap());
    });
}

#[test]
fn semaphores_count_and_a_bounded_one_refuses_release_past_its_bound() {
    within("semaphores", || {
        let semaphore = Semaphore::new(1);
        semaphore.release().unwrap(); // an unbounded semaphore may grow
        assert!(semaphore.try_acquire().unwrap() && semaphore.try_acquire().unwrap());
        assert!(!semaphore.try_acquire().unwrap());
        let bounded = BoundedSemaphore::new(2);
        assert!(bounded.acquire().unwrap());
        bounded.release().unwrap();
        assert!(matches!(bounded.release(), Err(PatternError::Misuse(_))));
    });
}

#[process]
fn set_later(event: Event) -> Result<(), String> {
    std::thread::sleep(Duration::from_millis(30));
    event.set().map_err(|e| e.to_string())
}

#[test]
fn an_event_set_in_a_child_wakes_the_parent_and_timeouts_report_false() {
    let event = Event::new();
    assert!(!event.wait_timeout(Duration::from_millis(10)).unwrap());
    let child = set_later(event.clone()).os().unwrap().spawn();
    let waiter = event.clone();
    assert!(within("waiting for the event", move || waiter
        .wait()
        .unwrap()));
    child.join_timeout(LIMIT).unwrap().unwrap();
    assert!(event.is_set().unwrap());
    event.clear().unwrap();
    assert!(!event.is_set().unwrap());
}

#[process]
fn sync_rounds(member: CspBarrier, rounds: u32) -> Result<u32, String> {
    for _ in 0..rounds {
        member.sync().map_err(|e| e.to_string())?;
    }
    Ok(rounds)
}

#[test]
fn csp_barrier_members_in_os_processes_sync_and_resign_by_leaving() {
    let first = CspBarrier::new();
    let members = parallel![
        sync_rounds(first.enrol().unwrap(), 3).os().unwrap(),
        sync_rounds(first.enrol().unwrap(), 5).os().unwrap(),
    ]
    .spawn();
    // Three rounds with both children, then two with the one left: the other resigned when
    // its process ended, so nobody waits for it.
    within("syncing five rounds", move || {
        for _ in 0..5 {
            first.sync().unwrap();
        }
    });
    let (a, b) = members.join_timeout(LIMIT).unwrap();
    assert_eq!((a.unwrap(), b.unwrap()), (3, 5));
}
