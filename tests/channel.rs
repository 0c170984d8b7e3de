//! Channel semantics: rendezvous, buffering, the try and timeout forms, any-to-any, retire and
//! poison (C++CSP2's rules), errors and debug output.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::{join, start, still_blocked, within};
use csp::{
    Channel, ChannelError, ReadTimeoutError, TryReadError, TryWriteError, WriteTimeoutError,
};

const SHORT: Duration = Duration::from_millis(100);

#[test]
fn rendezvous_write_waits_for_a_reader() {
    let channel = Channel::<u32>::named("meet");
    let writer = channel.writer();
    let returned = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&returned);
    let write = start(move || {
        let result = writer.write(5);
        flag.store(true, Ordering::SeqCst);
        result
    });
    still_blocked("a rendezvous write with no reader", &write, SHORT);
    assert!(!returned.load(Ordering::SeqCst));
    assert_eq!(within("read", move || channel.reader().read()).unwrap(), 5);
    join("write", write).unwrap();
}

#[test]
fn rendezvous_read_waits_for_a_writer() {
    let channel = Channel::<u32>::new();
    let reader = channel.reader();
    let read = start(move || reader.read());
    still_blocked("a read with no writer", &read, SHORT);
    channel.writer().write(9).unwrap();
    assert_eq!(join("read", read).unwrap(), 9);
}

#[test]
fn buffered_write_returns_once_buffered_and_blocks_when_full() {
    let channel = Channel::<u32>::buffered(2);
    let writer = channel.writer();
    let _reader = channel.reader();
    writer.write(1).unwrap();
    writer.write(2).unwrap();
    let third = start(move || writer.write(3));
    still_blocked("a write to a full buffer", &third, SHORT);
    let reader = channel.reader();
    let got = within("drain", move || {
        (0..3).map(|_| reader.read().unwrap()).collect::<Vec<_>>()
    });
    assert_eq!(got, [1, 2, 3]);
    join("third write", third).unwrap();
}

#[test]
fn try_forms_never_block() {
    let channel = Channel::<u32>::named("quiet");
    let (writer, reader) = (channel.writer(), channel.reader());
    match reader.try_read() {
        Err(TryReadError::Empty { channel }) => assert_eq!(channel.as_str(), "quiet"),
        other => panic!("expected Empty, got {other:?}"),
    }
    match writer.try_write(4) {
        Err(TryWriteError::Full { value, .. }) => assert_eq!(value, 4),
        other => panic!("expected Full, got {other:?}"),
    }
    // A blocked reader makes try_write succeed.
    let read = start(move || reader.read());
    let mut value = 11;
    within("try_write until the reader waits", move || {
        loop {
            match writer.try_write(value) {
                Ok(()) => break,
                Err(error) => value = error.into_value(),
            }
            thread::yield_now();
        }
    });
    assert_eq!(join("read", read).unwrap(), 11);
}

#[test]
fn try_read_takes_a_waiting_writers_value() {
    let channel = Channel::<u32>::new();
    let (writer, reader) = (channel.writer(), channel.reader());
    let write = start(move || writer.write(21));
    let got = within("try_read until the writer waits", move || {
        loop {
            match reader.try_read() {
                Ok(value) => break value,
                Err(TryReadError::Empty { .. }) => thread::yield_now(),
                Err(other) => panic!("{other}"),
            }
        }
    });
    assert_eq!(got, 21);
    join("write", write).unwrap();
}

#[test]
fn timeouts_expire_and_hand_the_value_back() {
    let channel = Channel::<String>::named("late");
    let (writer, reader) = (channel.writer(), channel.reader());
    match reader.read_timeout(Duration::from_millis(20)) {
        Err(ReadTimeoutError::Timeout { channel, after }) => {
            assert_eq!(channel.as_str(), "late");
            assert_eq!(after, Duration::from_millis(20));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    match writer.write_timeout("kept".to_string(), Duration::from_millis(20)) {
        Err(WriteTimeoutError::Timeout { value, .. }) => assert_eq!(value, "kept"),
        Err(other) => panic!("expected a timeout, got {other:?}"),
        Ok(()) => panic!("no reader, yet the write completed"),
    }
    // Nothing was left behind by the timed-out write.
    assert!(matches!(reader.try_read(), Err(TryReadError::Empty { .. })));
}

#[test]
fn timeouts_complete_when_a_partner_comes_in_time() {
    let channel = Channel::<u32>::new();
    let (writer, reader) = (channel.writer(), channel.reader());
    let read = start(move || reader.read_timeout(Duration::from_secs(5)));
    writer.write_timeout(3, Duration::from_secs(5)).unwrap();
    assert_eq!(join("read", read).unwrap(), 3);
}

#[test]
fn any_to_any_delivers_every_value_once() {
    let channel = Channel::<(usize, usize)>::new();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let writer = channel.writer();
            start(move || (0..250).for_each(|i| writer.write((w, i)).unwrap()))
        })
        .collect();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let reader = channel.reader();
            start(move || reader.iter().collect::<Vec<_>>())
        })
        .collect();
    for (n, writer) in writers.into_iter().enumerate() {
        join(&format!("writer {n}"), writer);
    }
    // The channel object holds no end: with the writers gone, the readers see retire.
    let mut seen: Vec<(usize, usize)> = Vec::new();
    for (n, reader) in readers.into_iter().enumerate() {
        let got = join(&format!("reader {n}"), reader);
        // Each writer's values reach one reader in the order written.
        let mut last: HashMap<usize, usize> = HashMap::new();
        for &(w, i) in &got {
            if let Some(&before) = last.get(&w) {
                assert!(i > before, "writer {w}: {i} after {before}");
            }
            last.insert(w, i);
        }
        seen.extend(got);
    }
    seen.sort_unstable();
    let expected: Vec<_> = (0..4).flat_map(|w| (0..250).map(move |i| (w, i))).collect();
    assert_eq!(seen, expected);
}

#[test]
fn one_writer_retiring_does_not_disturb_the_others() {
    let channel = Channel::<u32>::buffered(4);
    let (first, second, reader) = (channel.writer(), channel.writer(), channel.reader());
    first.write(1).unwrap();
    first.retire();
    second.write(2).unwrap();
    assert_eq!(reader.read().unwrap(), 1);
    assert_eq!(reader.read().unwrap(), 2);
    let read = start(move || reader.read());
    still_blocked("a read while one writer remains", &read, SHORT);
    second.retire();
    let error = join("read", read).unwrap_err();
    assert_eq!(
        error,
        ChannelError::Retired {
            channel: channel.name().clone()
        }
    );
}

#[test]
fn retired_writers_leave_the_buffer_to_be_drained() {
    let channel = Channel::<u32>::buffered(3);
    let writer = channel.writer();
    let reader = channel.reader();
    for n in 0..3 {
        writer.write(n).unwrap();
    }
    drop(writer); // dropping is retiring
    assert_eq!(reader.iter().collect::<Vec<_>>(), [0, 1, 2]);
    assert!(reader.read().unwrap_err().is_retired());
    assert!(reader.try_read().is_err());
}

#[test]
fn retired_readers_fail_blocked_and_later_writes_with_the_value() {
    let channel = Channel::<u32>::new();
    let writer = channel.writer();
    let reader = channel.reader();
    let blocked_writer = writer.clone();
    let write = start(move || blocked_writer.write(8));
    still_blocked(
        "a write with a live reader that does not read",
        &write,
        SHORT,
    );
    reader.retire();
    let error = join("blocked write", write).unwrap_err();
    assert_eq!(error.value, 8);
    assert!(error.error.is_retired());
    let error = writer.write(9).unwrap_err();
    assert_eq!((error.value, error.error.is_retired()), (9, true));
}

#[test]
fn poison_fails_every_blocked_and_later_operation_on_every_end() {
    let channel = Channel::<u32>::named("p");
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let reader = channel.reader();
            start(move || reader.read())
        })
        .collect();
    let other = Channel::<u32>::named("q");
    let writers: Vec<_> = (0..2)
        .map(|n| {
            let writer = other.writer();
            start(move || writer.write(n))
        })
        .collect();
    let _keep = (other.reader(), channel.writer());
    channel.writer().poison();
    other.reader().poison();
    for reader in readers {
        let error = join("blocked read", reader).unwrap_err();
        assert_eq!(
            error,
            ChannelError::Poisoned {
                channel: channel.name().clone()
            }
        );
    }
    let mut handed_back: Vec<u32> = writers
        .into_iter()
        .map(|writer| join("blocked write", writer).unwrap_err().into_value())
        .collect();
    handed_back.sort_unstable();
    assert_eq!(handed_back, [0, 1]);
    // Later operations, on old and new ends, fail too; the value comes back.
    assert!(channel.reader().read().unwrap_err().is_poisoned());
    let error = channel.writer().write(5).unwrap_err();
    assert_eq!((error.value, error.error.is_poisoned()), (5, true));
    assert!(matches!(
        channel.reader().try_read(),
        Err(TryReadError::Channel(_))
    ));
    assert!(matches!(
        channel.writer().write_timeout(1, SHORT),
        Err(WriteTimeoutError::Channel(_))
    ));
    // Poison is final: retiring afterwards does not change it.
    assert!(channel.reader().read().unwrap_err().is_poisoned());
}

#[test]
fn a_write_completed_before_poison_is_a_success() {
    let channel = Channel::<u32>::new();
    let (writer, reader) = (channel.writer(), channel.reader());
    let write = start(move || {
        let result = writer.write(1);
        writer.poison();
        result
    });
    assert_eq!(within("read", move || reader.read()).unwrap(), 1);
    assert!(
        join("write", write).is_ok(),
        "the completed write must report success"
    );
}

#[test]
fn buffer_poisoned_by_a_writer_stays_readable_until_drained() {
    let channel = Channel::<u32>::buffered(4);
    let (writer, reader) = (channel.writer(), channel.reader());
    writer.write(1).unwrap();
    writer.write(2).unwrap();
    writer.poison();
    assert!(writer.write(3).unwrap_err().error.is_poisoned());
    assert_eq!(reader.read().unwrap(), 1);
    assert_eq!(reader.read().unwrap(), 2);
    assert!(reader.read().unwrap_err().is_poisoned());
}

#[test]
fn buffer_poisoned_by_a_reader_is_discarded() {
    let channel = Channel::<Arc<()>>::buffered(4);
    let (writer, reader) = (channel.writer(), channel.reader());
    let tracker = Arc::new(());
    writer.write(Arc::clone(&tracker)).unwrap();
    writer.write(Arc::clone(&tracker)).unwrap();
    reader.poison();
    assert!(reader.read().unwrap_err().is_poisoned());
    assert_eq!(
        Arc::strong_count(&tracker),
        1,
        "the discarded values were dropped"
    );
}

#[test]
fn errors_name_the_channel_and_read_well() {
    let channel = Channel::<u32>::named("orders");
    channel.writer().poison();
    let message = channel.reader().read().unwrap_err().to_string();
    assert_eq!(message, "channel 'orders' is poisoned");
    let write = channel.writer().write(3).unwrap_err();
    assert_eq!(
        write.to_string(),
        "channel 'orders' is poisoned: the value was not delivered"
    );
    let unnamed = Channel::<u32>::new();
    assert!(unnamed.name().as_str().starts_with("channel#"));
}

#[test]
fn debug_shows_who_is_attached_and_what_is_blocked() {
    let channel = Channel::<u32>::named_buffered("jobs", 2);
    let (writer, _reader) = (channel.writer(), channel.reader());
    writer.write(1).unwrap();
    let text = format!("{channel:?}");
    assert!(text.contains("name: \"jobs\""), "{text}");
    assert!(text.contains("capacity: 2"), "{text}");
    assert!(text.contains("buffered: 1"), "{text}");
    assert!(text.contains("readers: 1"), "{text}");
    assert!(text.contains("writers: 1"), "{text}");
    writer.poison();
    assert!(format!("{writer:?}").contains("poisoned: true"));
}

#[test]
fn mobile_ends_travel_over_channels() {
    let ends = Channel::<csp::Writer<String>>::new();
    let data = Channel::<String>::new();
    let (end_writer, end_reader) = (ends.writer(), ends.reader());
    let worker = start(move || {
        let reply = end_reader.read().unwrap();
        reply.write("over a mobile end".to_string())
    });
    end_writer.write(data.writer()).unwrap();
    let reader = data.reader();
    assert_eq!(
        within("read", move || reader.read()).unwrap(),
        "over a mobile end"
    );
    join("worker", worker).unwrap();
}

#[test]
fn a_channel_holding_its_own_end_can_be_dropped_and_poisoned() {
    // Values are dropped outside the channel's lock, so a value holding an end of the same
    // channel does not deadlock when the buffer is discarded.
    type Anything = Box<dyn std::any::Any + Send>;
    let channel = Channel::<Anything>::buffered(1);
    let writer = channel.writer();
    writer.write(Box::new(channel.reader())).unwrap();
    let reader = channel.reader();
    within(
        "poison by a reader discards a buffer holding an end",
        move || reader.poison(),
    );
    within("dropping the last ends", move || drop((writer, channel)));
}
