//! One conformance suite of channel, poison, retire and timeout behaviour, run with every
//! process on a thread, again with every process in its own OS process, and mixed.

mod common;

use std::time::Duration;

use common::LIMIT;
use csp::prelude::*;
use csp::{ChannelError, ReadTimeoutError};
use serde::Serialize;
use serde::de::DeserializeOwned;

csp::child_entry!();

#[derive(Clone, Copy, Debug)]
enum Placement {
    Threads,
    OsProcesses,
    Mixed,
}

const PLACEMENTS: [Placement; 3] = [Placement::Threads, Placement::OsProcesses, Placement::Mixed];

/// Places the `index`-th process of a network as `placement` says.
fn place<R>(placement: Placement, index: usize, process: Process<R>) -> Process<R>
where
    R: Serialize + DeserializeOwned + Send + 'static,
{
    let in_child = match placement {
        Placement::Threads => false,
        Placement::OsProcesses => true,
        Placement::Mixed => index % 2 == 0,
    };
    if in_child {
        process.os().expect("placeable")
    } else {
        process
    }
}

#[process]
fn write_all(out: Writer<u32>, values: Vec<u32>) -> Result<usize, ChannelError> {
    for (sent, &value) in values.iter().enumerate() {
        if let Err(error) = out.write(value) {
            assert_eq!(error.value, value, "a failed write hands its value back");
            let _ = sent;
            return Err(error.error);
        }
    }
    Ok(values.len())
}

#[process]
fn read_all(input: Reader<u32>) -> Vec<u32> {
    input.iter().collect()
}

#[process]
fn read_then_poison(input: Reader<u32>, count: usize) -> Vec<u32> {
    let got: Vec<u32> = input.iter().take(count).collect();
    input.poison();
    got
}

#[process]
fn write_then_poison(out: Writer<u32>, values: Vec<u32>) -> Result<(), ChannelError> {
    for value in values {
        out.write(value)?;
    }
    out.poison();
    Ok(())
}

#[process]
fn read_with_timeout(input: Reader<u32>, millis: u64) -> Result<u32, String> {
    match input.read_timeout(Duration::from_millis(millis)) {
        Ok(value) => Ok(value),
        Err(ReadTimeoutError::Timeout { .. }) => Err("timeout".into()),
        Err(other) => Err(other.to_string()),
    }
}

#[test]
fn rendezvous_delivers_in_order() {
    for placement in PLACEMENTS {
        let channel = Channel::named("c");
        let (sent, got) = parallel![
            place(placement, 0, write_all(channel.writer(), (0..20).collect())),
            place(placement, 1, read_all(channel.reader())),
        ]
        .run_timeout(LIMIT)
        .unwrap();
        assert_eq!(sent, Ok(20), "{placement:?}");
        assert_eq!(got, (0..20).collect::<Vec<_>>(), "{placement:?}");
    }
}

#[test]
fn buffered_writes_finish_without_a_reader_and_stay_readable() {
    for placement in PLACEMENTS {
        let channel = Channel::buffered(5);
        let sent = place(
            placement,
            0,
            write_all(channel.writer(), vec![1, 2, 3, 4, 5]),
        )
        .run_timeout(LIMIT)
        .unwrap();
        assert_eq!(sent, Ok(5), "{placement:?}");
        let got = place(placement, 1, read_all(channel.reader()))
            .run_timeout(LIMIT)
            .unwrap();
        assert_eq!(got, [1, 2, 3, 4, 5], "{placement:?}");
    }
}

#[test]
fn any_to_any_delivers_every_value_exactly_once() {
    for placement in PLACEMENTS {
        let channel = Channel::named("shared");
        let (a, b, mut x, y) = parallel![
            place(placement, 0, write_all(channel.writer(), (0..30).collect())),
            place(
                placement,
                1,
                write_all(channel.writer(), (100..130).collect())
            ),
            place(placement, 2, read_all(channel.reader())),
            place(placement, 3, read_all(channel.reader())),
        ]
        .run_timeout(LIMIT)
        .unwrap();
        assert_eq!((a, b), (Ok(30), Ok(30)), "{placement:?}");
        x.extend(y);
        x.sort_unstable();
        let expected: Vec<u32> = (0..30).chain(100..130).collect();
        assert_eq!(x, expected, "{placement:?}");
    }
}

#[test]
fn poison_by_a_reader_stops_the_writer_and_completed_writes_count() {
    for placement in PLACEMENTS {
        let channel = Channel::named("p");
        let (sent, got) = parallel![
            place(
                placement,
                0,
                write_all(channel.writer(), (0..100).collect())
            ),
            place(placement, 1, read_then_poison(channel.reader(), 7)),
        ]
        .run_timeout(LIMIT)
        .unwrap();
        assert_eq!(got, (0..7).collect::<Vec<_>>(), "{placement:?}");
        assert!(
            matches!(sent, Err(ChannelError::Poisoned { .. })),
            "{placement:?}: {sent:?}"
        );
    }
}

#[test]
fn poison_by_a_writer_reaches_the_reader_after_the_values() {
    for placement in PLACEMENTS {
        let channel = Channel::buffered(3);
        let (written, got) = parallel![
            place(
                placement,
                0,
                write_then_poison(channel.writer(), vec![1, 2, 3])
            ),
            place(placement, 1, read_all(channel.reader())),
        ]
        .run_timeout(LIMIT)
        .unwrap();
        assert_eq!(written, Ok(()), "{placement:?}");
        assert_eq!(
            got,
            [1, 2, 3],
            "{placement:?}: a writer's poison leaves the buffer readable"
        );
        assert!(channel.reader().read().unwrap_err().is_poisoned());
    }
}

#[test]
fn one_writer_retiring_does_not_stop_the_others() {
    for placement in PLACEMENTS {
        let channel = Channel::named("r");
        let (a, b, got) = parallel![
            place(placement, 0, write_all(channel.writer(), vec![1])),
            place(
                placement,
                1,
                write_all(channel.writer(), (10..20).collect())
            ),
            place(placement, 2, read_all(channel.reader())),
        ]
        .run_timeout(LIMIT)
        .unwrap();
        assert_eq!((a, b), (Ok(1), Ok(10)), "{placement:?}");
        let mut got = got;
        got.sort_unstable();
        assert_eq!(
            got,
            [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
            "{placement:?}"
        );
    }
}

#[test]
fn a_read_with_nothing_to_read_times_out() {
    for placement in PLACEMENTS {
        let channel = Channel::<u32>::new();
        let _writer = channel.writer();
        let result = place(placement, 0, read_with_timeout(channel.reader(), 30))
            .run_timeout(LIMIT)
            .unwrap();
        assert_eq!(result, Err("timeout".to_string()), "{placement:?}");
    }
}

#[process]
fn choose_until_retired(left: Reader<u32>, right: Reader<u32>) -> Result<Vec<u32>, csp::Error> {
    let mut alt = Alternation::fair();
    let mut open = [true, true];
    let mut got = Vec::new();
    while open[0] || open[1] {
        match csp::select! {
            &mut alt;
            v = read(left), if open[0] => v,
            v = read(right), if open[1] => v,
        } {
            Ok(v) => got.push(v),
            Err(csp::SelectError::Channel { guard, error }) if error.is_retired() => {
                open[guard] = false;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(got)
}

#[process]
fn offer_each(
    left: Writer<u32>,
    right: Writer<u32>,
    values: Vec<u32>,
) -> Result<Vec<u8>, csp::Error> {
    let mut lanes = Vec::new();
    for value in values {
        lanes.push(csp::select! {
            write(left, value) => 0u8,
            write(right, value) => 1u8,
        }?);
    }
    Ok(lanes)
}

#[test]
fn a_choice_merges_channels_fed_by_other_processes() {
    for placement in PLACEMENTS {
        let (left, right) = (Channel::named("left"), Channel::named("right"));
        let (a, b, got) = parallel![
            place(placement, 0, write_all(left.writer(), (0..15).collect())),
            place(
                placement,
                1,
                write_all(right.writer(), (100..115).collect())
            ),
            place(
                placement,
                2,
                choose_until_retired(left.reader(), right.reader())
            ),
        ]
        .run_timeout(LIMIT)
        .unwrap();
        assert_eq!((a, b), (Ok(15), Ok(15)), "{placement:?}");
        let got = got.unwrap();
        let from_left: Vec<u32> = got.iter().copied().filter(|&v| v < 100).collect();
        let from_right: Vec<u32> = got.iter().copied().filter(|&v| v >= 100).collect();
        assert_eq!(from_left, (0..15).collect::<Vec<_>>(), "{placement:?}");
        assert_eq!(from_right, (100..115).collect::<Vec<_>>(), "{placement:?}");
    }
}

#[test]
fn choices_on_both_ends_agree_on_every_message() {
    for placement in PLACEMENTS {
        let (left, right) = (Channel::named("left"), Channel::named("right"));
        let (lanes, got) = parallel![
            place(
                placement,
                0,
                offer_each(left.writer(), right.writer(), (0..40).collect())
            ),
            place(
                placement,
                1,
                choose_until_retired(left.reader(), right.reader())
            ),
        ]
        .run_timeout(LIMIT)
        .unwrap();
        let (lanes, got) = (lanes.unwrap(), got.unwrap());
        assert_eq!(lanes.len(), 40, "{placement:?}");
        assert_eq!(
            got,
            (0..40).collect::<Vec<_>>(),
            "{placement:?}: each offered value once, in order"
        );
    }
}
