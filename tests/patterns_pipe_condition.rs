//! Pipes and conditions, in threads and across OS processes.

mod common;

use std::time::Duration;

use common::{LIMIT, within};
use csp::patterns::{Condition, PatternError, PipeEnd, SharedValue, one_way_pipe, pipe};
use csp::prelude::*;

csp::child_entry!();

/// The seed's pipe dialogue: the child sends until "END", then reads the parent's answer.
#[process]
fn talk(end: PipeEnd<String>) -> Result<String, String> {
    for message in ["hello", "how are you", "END"] {
        end.send(message.to_string()).map_err(|e| e.to_string())?;
    }
    end.recv().map_err(|e| e.to_string())
}

#[test]
fn a_duplex_pipe_carries_a_dialogue_between_parent_and_child_process() {
    let (parent, child) = pipe();
    let child = talk(child).os().unwrap().spawn();
    let received = within("receiving until END", move || {
        let mut received = Vec::new();
        loop {
            let message = parent.recv().unwrap();
            if message == "END" {
                break;
            }
            received.push(message);
        }
        parent.send("fine, thanks".to_string()).unwrap();
        // The child's end closes when its process ends: end of stream.
        assert_eq!(parent.recv(), Err(PatternError::EndOfStream));
        received
    });
    assert_eq!(received, ["hello", "how are you"]);
    assert_eq!(child.join_timeout(LIMIT).unwrap().unwrap(), "fine, thanks");
}

#[process]
fn send_numbers(end: PipeEnd<u32>, count: u32) -> Result<(), String> {
    for n in 0..count {
        end.send(n).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[test]
fn a_one_way_pipe_from_a_child_ends_with_end_of_stream_and_refuses_the_wrong_direction() {
    let (receiving, sending) = one_way_pipe();
    assert!(matches!(
        receiving.send(1).map_err(|e| e.into_value()),
        Err(1)
    ));
    let child = send_numbers(sending, 100).os().unwrap().spawn();
    let got = within("receiving", move || {
        let mut got = Vec::new();
        while let Ok(n) = receiving.recv() {
            got.push(n);
        }
        got
    });
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    child.join_timeout(LIMIT).unwrap().unwrap();
}

#[test]
fn poll_reports_waiting_messages_without_losing_them() {
    within("polling", || {
        let (a, b) = pipe::<u32>();
        assert!(!a.poll(Duration::from_millis(10)).unwrap());
        assert_eq!(
            a.recv_timeout(Duration::from_millis(10)),
            Err(PatternError::Empty)
        );
        b.send(7).unwrap();
        assert!(a.poll(LIMIT).unwrap());
        assert!(a.poll(Duration::ZERO).unwrap(), "still there");
        assert_eq!(a.recv().unwrap(), 7);
        b.close();
        assert!(
            a.poll(LIMIT).unwrap(),
            "a closed end is ready: recv returns at once"
        );
        assert_eq!(a.recv(), Err(PatternError::EndOfStream));
        assert_eq!(a.send(1).map_err(|error| error.into_value()), Err(1));
    });
}

/// The seed's condition consumer: waits until the shared value is ready, then reads it.
#[process]
fn consume_when_ready(ready: Condition, value: SharedValue<u32>) -> Result<u32, String> {
    ready.acquire().map_err(|e| e.to_string())?;
    let ok = ready
        .wait_for(|| value.get().unwrap_or(0) != 0, Some(LIMIT))
        .map_err(|e| e.to_string())?;
    let got = value.get().map_err(|e| e.to_string())?;
    ready.release().map_err(|e| e.to_string())?;
    if ok { Ok(got) } else { Err("timed out".into()) }
}

#[test]
fn a_consumer_in_a_child_waits_on_a_condition_until_the_producer_notifies() {
    let ready = Condition::new();
    let value = SharedValue::new(0u32);
    let consumer = consume_when_ready(ready.clone(), value.clone())
        .os()
        .unwrap()
        .spawn();
    within("producing", move || {
        std::thread::sleep(Duration::from_millis(20)); // let the consumer wait first (either order passes)
        ready.acquire().unwrap();
        value.set(42).unwrap();
        ready.notify_all().unwrap();
        ready.release().unwrap();
    });
    assert_eq!(consumer.join_timeout(LIMIT).unwrap().unwrap(), 42);
}

#[test]
fn condition_misuse_is_an_error_and_a_timed_wait_takes_the_lock_back() {
    within("conditions", || {
        let condition = Condition::new();
        let other = condition.clone();
        assert!(matches!(condition.wait(), Err(PatternError::Misuse(_))));
        assert!(matches!(condition.notify(1), Err(PatternError::Misuse(_))));
        assert!(matches!(condition.release(), Err(PatternError::Misuse(_))));
        assert!(condition.acquire().unwrap() && condition.acquire().unwrap()); // re-entrant
        assert!(!condition.wait_timeout(Duration::from_millis(20)).unwrap());
        assert!(
            !other.try_acquire().unwrap(),
            "held again, at depth two, after the wait"
        );
        condition.release().unwrap();
        assert!(!other.try_acquire().unwrap());
        condition.release().unwrap();
        assert!(other.try_acquire().unwrap());
        assert!(
            !other
                .wait_for(|| false, Some(Duration::from_millis(20)))
                .unwrap()
        );
    });
}
