//! Stress: thousands of alternations and writers over shared channels. No message may be lost
//! or duplicated, no choice may fire a wrong guard, and nothing may hang.

mod common;

use std::collections::HashSet;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use csp::SelectError;
use csp::prelude::*;

const CHANNELS: usize = 8;
const WRITERS: usize = 1000;
const PER_WRITER: usize = 20;
const READERS: usize = 4;
const BOUND: Duration = Duration::from_secs(120);

fn spawn_small<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
    let (sender, receiver) = mpsc::channel();
    thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            let _ = sender.send(f());
        })
        .expect("spawn a stress thread");
    receiver
}

#[test]
fn thousands_of_alternating_writers_against_alternating_readers() {
    let channels: Vec<Channel<(usize, usize)>> = (0..CHANNELS)
        .map(|i| Channel::named(format!("lane{i}")))
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            // Each writer offers every value on two lanes at once and learns which one took it.
            let first = channels[w % CHANNELS].writer();
            let second = channels[(w * 7 + 3) % CHANNELS].writer();
            spawn_small(move || {
                let mut lanes = Vec::with_capacity(PER_WRITER);
                for seq in 0..PER_WRITER {
                    let lane = select! {
                        write(first, (w, seq)) => 0,
                        write(second, (w, seq)) => 1,
                    }
                    .expect("no lane is poisoned");
                    lanes.push(lane);
                }
                lanes
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let ends: Vec<Reader<(usize, usize)>> = channels.iter().map(Channel::reader).collect();
            spawn_small(move || {
                let mut alt = Alternation::fair();
                let mut open = vec![true; ends.len()];
                let mut got = Vec::new();
                while open.iter().any(|&o| o) {
                    let mut guards: Vec<InputGuard<'_, _>> = ends
                        .iter()
                        .zip(&open)
                        .map(|(end, &o)| InputGuard::new(end).when(o))
                        .collect();
                    let mut dynamic: Vec<&mut dyn Guard> =
                        guards.iter_mut().map(|g| g as &mut dyn Guard).collect();
                    match alt.select(&mut dynamic) {
                        Ok(index) => {
                            drop(dynamic);
                            got.push(
                                guards[index]
                                    .take()
                                    .expect("the chosen guard holds a value"),
                            );
                        }
                        Err(SelectError::Channel { guard, error }) => {
                            assert!(error.is_retired(), "{error}");
                            open[guard] = false;
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
                got
            })
        })
        .collect();
    drop(channels);

    let mut expected = HashSet::new();
    for (w, writer) in writers.into_iter().enumerate() {
        let lanes = writer
            .recv_timeout(BOUND)
            .unwrap_or_else(|_| panic!("writer {w} did not finish within {BOUND:?}"));
        assert_eq!(lanes.len(), PER_WRITER);
        expected.extend((0..PER_WRITER).map(|seq| (w, seq)));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for (r, reader) in readers.into_iter().enumerate() {
        let got = reader
            .recv_timeout(BOUND)
            .unwrap_or_else(|_| panic!("reader {r} did not finish within {BOUND:?}"));
        total += got.len();
        for message in got {
            assert!(
                seen.insert(message),
                "message {message:?} was delivered twice"
            );
        }
    }
    assert_eq!(
        total,
        WRITERS * PER_WRITER,
        "every message was delivered once"
    );
    assert_eq!(seen, expected);
}

#[test]
fn thousands_of_plain_writers_and_alternations_on_one_rendezvous_channel() {
    let channel = Channel::<usize>::named("hub");
    let writers: Vec<_> = (0..2000)
        .map(|w| {
            let writer = channel.writer();
            spawn_small(move || writer.write(w).is_ok())
        })
        .collect();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let reader = channel.reader();
            spawn_small(move || {
                let mut got = Vec::new();
                loop {
                    match select! { v = read(reader) => v } {
                        Ok(v) => got.push(v),
                        Err(_) => break got,
                    }
                }
            })
        })
        .collect();
    drop(channel);
    for writer in writers {
        assert!(writer.recv_timeout(BOUND).expect("a writer finished"));
    }
    let mut all: Vec<usize> = readers
        .into_iter()
        .flat_map(|r| r.recv_timeout(BOUND).expect("a reader finished"))
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..2000).collect::<Vec<_>>());
}
