//! Every operation of every pattern, exercised by the same process twice: once on a thread of
//! this OS process, once in a child OS process. The state always lives in this OS process.

mod common;

use std::time::Duration;

use common::LIMIT;
use csp::patterns::{
    Barrier, BoundedSemaphore, Condition, CspBarrier, Event, Lock, Manager, Namespace,
    PatternError, PipeEnd, Queue, RLock, Semaphore, SharedArray, SharedDict, SharedList,
    SharedValue, pipe,
};
use csp::prelude::*;

csp::child_entry!();

/// Fails the exercise with where and what, instead of panicking in a child.
macro_rules! check {
    ($condition:expr) => {
        if !$condition {
            return Err(format!("line {}: {}", line!(), stringify!($condition)));
        }
    };
}

type Outcome = Result<(), String>;

fn ok<T>(result: Result<T, PatternError>) -> Result<T, String> {
    result.map_err(|error| format!("unexpected error: {error}"))
}

/// Runs the process made by `make` on a thread, then in a child OS process.
fn in_both_placements(what: &str, make: impl Fn() -> Process<Outcome>) {
    make()
        .run_timeout(LIMIT)
        .unwrap_or_else(|error| panic!("{what} on a thread: {error}"))
        .unwrap_or_else(|error| panic!("{what} on a thread: {error}"));
    make()
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap_or_else(|error| panic!("{what} in an OS process: {error}"))
        .unwrap_or_else(|error| panic!("{what} in an OS process: {error}"));
}

const SHORT: Duration = Duration::from_millis(20);

#[process]
fn exercise_queue(queue: Queue<u32>) -> Outcome {
    check!(ok(queue.is_empty())?);
    check!(queue.try_get() == Err(PatternError::Empty));
    check!(queue.get_timeout(SHORT) == Err(PatternError::Empty));
    ok(queue.put(1).map_err(|e| e.reason().clone()))?;
    ok(queue.put_timeout(2, SHORT).map_err(|e| e.reason().clone()))?;
    check!(queue.try_put(3).map_err(|e| e.into_value()) == Err(Some(3))); // bound 2
    check!(ok(queue.is_full())?);
    check!(ok(queue.len())? == 2);
    check!(ok(queue.get())? == 1);
    check!(ok(queue.get_timeout(LIMIT))? == 2);
    ok(queue.task_done())?;
    ok(queue.task_done())?;
    check!(matches!(queue.task_done(), Err(PatternError::Misuse(_))));
    ok(queue.join())?;
    Ok(())
}

#[test]
fn queue_operations_in_both_placements() {
    in_both_placements("queue", || exercise_queue(Queue::bounded(2)));
}

#[process]
fn exercise_closed_queue(queue: Queue<u32>) -> Outcome {
    ok(queue.put(7).map_err(|e| e.reason().clone()))?;
    ok(queue.close())?;
    let refused = queue.put(8).unwrap_err();
    check!(refused.reason() == &PatternError::Closed);
    check!(refused.into_value() == Some(8));
    check!(ok(queue.get())? == 7);
    check!(queue.get() == Err(PatternError::Closed));
    Ok(())
}

#[test]
fn closing_a_queue_in_both_placements() {
    in_both_placements("closed queue", || exercise_closed_queue(Queue::new()));
}

#[process]
fn exercise_locks(lock: Lock, rlock: RLock, other_rlock: RLock) -> Outcome {
    check!(ok(lock.acquire())?);
    check!(ok(lock.held_by_me())? == 1);
    check!(!ok(lock.clone().try_acquire())?);
    check!(matches!(
        lock.clone().release(),
        Err(PatternError::Misuse(_))
    ));
    ok(lock.release())?;
    check!(ok(lock.acquire_timeout(SHORT))?);
    ok(lock.release())?;
    check!(ok(rlock.acquire())? && ok(rlock.try_acquire())?);
    check!(ok(rlock.held_by_me())? == 2);
    check!(!ok(other_rlock.acquire_timeout(SHORT))?);
    check!(matches!(
        other_rlock.release(),
        Err(PatternError::Misuse(_))
    ));
    ok(rlock.release())?;
    ok(rlock.release())?;
    check!(ok(other_rlock.try_acquire())?);
    ok(other_rlock.release())?;
    Ok(())
}

#[test]
fn lock_operations_in_both_placements() {
    let rlock = RLock::new();
    in_both_placements("locks", || {
        exercise_locks(Lock::new(), rlock.clone(), rlock.clone())
    });
}

#[process]
fn exercise_semaphores(semaphore: Semaphore, bounded: BoundedSemaphore) -> Outcome {
    check!(ok(semaphore.acquire())? && ok(semaphore.try_acquire())?);
    check!(!ok(semaphore.acquire_timeout(SHORT))?);
    ok(semaphore.release())?;
    ok(semaphore.release())?;
    ok(semaphore.release())?; // past the start: allowed for a plain semaphore
    check!(ok(bounded.acquire())?);
    ok(bounded.release())?;
    check!(matches!(bounded.release(), Err(PatternError::Misuse(_))));
    Ok(())
}

#[test]
fn semaphore_operations_in_both_placements() {
    in_both_placements("semaphores", || {
        exercise_semaphores(Semaphore::new(2), BoundedSemaphore::new(1))
    });
}

#[process]
fn exercise_event(event: Event) -> Outcome {
    check!(!ok(event.is_set())?);
    check!(!ok(event.wait_timeout(SHORT))?);
    ok(event.set())?;
    check!(ok(event.is_set())? && ok(event.wait())? && ok(event.wait_timeout(SHORT))?);
    ok(event.clear())?;
    check!(!ok(event.is_set())?);
    Ok(())
}

#[test]
fn event_operations_in_both_placements() {
    in_both_placements("event", || exercise_event(Event::new()));
}

#[process]
fn exercise_condition(condition: Condition, counter: SharedValue<u32>) -> Outcome {
    check!(matches!(condition.wait(), Err(PatternError::Misuse(_))));
    check!(ok(condition.acquire())?);
    check!(!ok(condition.wait_timeout(SHORT))?); // nobody notifies: times out, lock held again
    let notifier = {
        let (condition, counter) = (condition.clone(), counter.clone());
        std::thread::spawn(move || -> Result<(), PatternError> {
            condition.acquire()?;
            counter.set(1)?;
            condition.notify(1)?;
            condition.release()
        })
    };
    check!(ok(
        condition.wait_for(|| counter.get().unwrap_or(0) == 1, Some(LIMIT))
    )?);
    ok(condition.notify_all())?;
    ok(condition.release())?;
    check!(notifier.join().is_ok_and(|result| result.is_ok()));
    check!(ok(condition.try_acquire())? && ok(condition.acquire_timeout(SHORT))?);
    ok(condition.release())?;
    ok(condition.release())?;
    Ok(())
}

#[test]
fn condition_operations_in_both_placements() {
    in_both_placements("condition", || {
        exercise_condition(Condition::new(), SharedValue::new(0))
    });
}

#[process]
fn exercise_barriers(barrier: Barrier, member: CspBarrier) -> Outcome {
    check!(barrier.parties() == 2);
    let other = barrier.clone();
    let waiting = std::thread::spawn(move || other.wait());
    let mine = ok(barrier.wait())?;
    let theirs = waiting.join().map_err(|_| "the other party panicked")?;
    check!(mine + ok(theirs)? == 1);
    check!(ok(barrier.n_waiting())? == 0 && !ok(barrier.is_broken())?);
    check!(barrier.wait_timeout(SHORT) == Err(PatternError::BrokenBarrier));
    ok(barrier.reset())?;
    ok(barrier.abort())?;
    check!(ok(barrier.is_broken())?);
    ok(member.sync())?; // the only member left in this placement: passes at once
    let second = ok(member.enrol())?;
    let syncing = std::thread::spawn(move || second.sync());
    ok(member.sync())?;
    check!(syncing.join().is_ok_and(|result| result.is_ok()));
    Ok(())
}

#[test]
fn barrier_operations_in_both_placements() {
    in_both_placements("barriers", || {
        exercise_barriers(Barrier::new(2), CspBarrier::new())
    });
}

#[process]
fn exercise_shared(
    value: SharedValue<i64>,
    array: SharedArray<i64>,
    list: SharedList<String>,
    dict: SharedDict<u32, String>,
    ns: Namespace<i64>,
) -> Outcome {
    check!(ok(value.set(5))? == 0 && ok(value.get())? == 5);
    check!(
        ok(value.update(|cell| {
            cell.0 *= 2;
            cell.0
        }))? == 10
    );
    check!(ok(array.len())? == 3 && ok(array.get(1))? == 2);
    check!(ok(array.set(1, -2))? == 2);
    check!(
        array.get(3)
            == Err(PatternError::OutOfRange {
                index: 3,
                length: 3
            })
    );
    check!(ok(array.snapshot())? == [1, -2, 3]);
    check!(ok(list.is_empty())?);
    ok(list.push("b".into()))?;
    ok(list.insert(0, "a".into()))?;
    check!(
        list.insert(5, "z".into())
            == Err(PatternError::OutOfRange {
                index: 5,
                length: 2
            })
    );
    check!(ok(list.remove(0))? == "a" && ok(list.pop())? == Some("b".into()));
    check!(ok(list.pop())?.is_none());
    check!(ok(dict.insert(1, "one".into()))?.is_none());
    check!(ok(dict.insert(1, "uno".into()))? == Some("one".into()));
    check!(ok(dict.get(&1))? == Some("uno".into()) && ok(dict.get(&2))?.is_none());
    check!(ok(dict.len())? == 1 && !ok(dict.is_empty())?);
    check!(ok(dict.remove(&1))? == Some("uno".into()) && ok(dict.is_empty())?);
    ok(ns.insert("x".into(), 1))?;
    check!(ok(ns.attribute("x"))? == 1);
    check!(ns.attribute("y") == Err(PatternError::NoSuchKey("y".into())));
    Ok(())
}

#[test]
fn shared_state_operations_in_both_placements() {
    let manager = Manager::new();
    in_both_placements("shared state", || {
        exercise_shared(
            manager.value(0),
            manager.array(vec![1, 2, 3]),
            manager.list(Vec::new()),
            manager.dict(),
            manager.namespace(),
        )
    });
}

#[process]
fn exercise_pipe(end: PipeEnd<u32>) -> Outcome {
    check!(!ok(end.poll(SHORT))?);
    check!(end.recv_timeout(SHORT) == Err(PatternError::Empty));
    end.send(1).map_err(|e| e.to_string())?;
    check!(ok(end.poll(LIMIT))?); // the echo on the other side answered
    check!(ok(end.recv())? == 2);
    end.send(0).map_err(|e| e.to_string())?; // asks the echo to close its end
    check!(end.recv() == Err(PatternError::EndOfStream));
    check!(end.send(5).map_err(|e| e.into_value()) == Err(5));
    Ok(())
}

/// The other end: answers n with n + 1 until it gets 0, then closes.
fn echo(end: PipeEnd<u32>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while let Ok(n) = end.recv() {
            if n == 0 {
                break;
            }
            let _ = end.send(n + 1);
        }
    })
}

#[test]
fn pipe_operations_in_both_placements() {
    in_both_placements("pipe", || {
        let (near, far) = pipe();
        let _echo = echo(far);
        exercise_pipe(near)
    });
}

#[process]
fn use_after_shutdown(list: SharedList<u32>, lock: Lock, queue: Queue<u32>) -> Outcome {
    check!(matches!(list.push(1), Err(PatternError::Gone { .. })));
    check!(matches!(lock.acquire(), Err(PatternError::Gone { .. })));
    let refused = queue.put(3).unwrap_err();
    check!(matches!(refused.reason(), PatternError::Gone { .. }));
    check!(refused.into_value() == Some(3));
    Ok(())
}

#[test]
fn handles_used_after_their_manager_shut_down_get_a_clear_error_in_both_placements() {
    in_both_placements("after shutdown", || {
        let manager = Manager::new();
        let (list, lock, queue) = (manager.list(vec![]), manager.lock(), manager.queue(None));
        let process = use_after_shutdown(list, lock, queue);
        manager.shutdown();
        process
    });
}
