//! Lightweight processes (`#[process] async fn`): tasks on the executor, on the same
//! channels as threads, in both directions, with poison, retire and panics as for threads.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};

use common::{LIMIT, within};
use csp::prelude::*;
use csp::{ChannelError, RunError};

csp::child_entry!();

#[process]
async fn produce(out: Writer<u64>, count: u64) -> Result<(), csp::Error> {
    for n in 0..count {
        out.write_async(n).await?;
    }
    Ok(())
}

#[process]
async fn sum(input: Reader<u64>) -> u64 {
    let mut total = 0;
    while let Ok(n) = input.read_async().await {
        total += n;
    }
    total
}

#[process]
fn sum_on_a_thread(input: Reader<u64>) -> u64 {
    input.iter().sum()
}

#[process]
fn produce_on_a_thread(out: Writer<u64>, count: u64) -> Result<(), csp::Error> {
    for n in 0..count {
        out.write(n)?;
    }
    Ok(())
}

#[test]
fn tasks_talk_to_tasks_and_to_threads_in_both_directions() {
    let expected: u64 = (0..1000).sum();
    let (a, b, c) = (Channel::new(), Channel::new(), Channel::buffered(3));
    let (_, task_task, _, thread_reads, _, task_reads) = parallel![
        produce(a.writer(), 1000),
        sum(a.reader()),
        produce(b.writer(), 1000),
        sum_on_a_thread(b.reader()),
        produce_on_a_thread(c.writer(), 1000),
        sum(c.reader()),
    ]
    .run_timeout(LIMIT)
    .unwrap();
    assert_eq!(
        (task_task, thread_reads, task_reads),
        (expected, expected, expected)
    );
}

/// Passes the token on, `laps` times.
#[process]
async fn relay(input: Reader<u64>, output: Writer<u64>) -> Result<(), csp::Error> {
    loop {
        let token = input.read_async().await?;
        output.write_async(token + 1).await?;
    }
}

#[test]
fn a_ring_of_ten_thousand_lightweight_processes_passes_a_token_round() {
    const SIZE: usize = 10_000;
    let channels: Vec<Channel<u64>> = (0..SIZE).map(|_| Channel::new()).collect();
    let relays: Vec<Process<Result<(), csp::Error>>> = (0..SIZE - 1)
        .map(|i| relay(channels[i].reader(), channels[i + 1].writer()))
        .collect();
    let (first, last) = (channels[0].writer(), channels[SIZE - 1].reader());
    drop(channels);
    let ring = Parallel::of(relays).spawn();
    let hops = within("a lap of the ring", move || {
        first.write(0).unwrap();
        let hops = last.read().unwrap();
        first.poison(); // ends every relay, by propagation
        hops
    });
    assert_eq!(hops, SIZE as u64 - 1);
    let ended = ring.join_timeout(LIMIT).unwrap();
    assert!(ended.iter().all(|result| matches!(
        result,
        Err(csp::Error::Channel(ChannelError::Poisoned { .. }))
    )));
}

#[process]
async fn panics(_input: Reader<u64>) {
    panic!("a task gave up");
}

#[test]
fn a_panicking_task_is_reported_and_poisons_its_ends() {
    let channel = Channel::<u64>::named("doomed");
    let writer = channel.writer();
    let error = panics(channel.reader()).run_timeout(LIMIT).unwrap_err();
    assert!(
        matches!(&error, RunError::Panicked { message, .. } if message == "a task gave up"),
        "{error:?}"
    );
    assert!(writer.write(1).unwrap_err().error.is_poisoned());
}

#[test]
fn a_read_whose_future_is_dropped_after_it_was_handed_a_value_loses_nothing() {
    within("dropping a chosen read", || {
        let channel = Channel::<u32>::named("kept");
        let (reader, writer) = (channel.reader(), channel.writer());
        let mut read = Box::pin(reader.read_async());
        let mut context = Context::from_waker(Waker::noop());
        assert!(
            read.as_mut().poll(&mut context).is_pending(),
            "nothing written yet"
        );
        // A rendezvous write completes by handing its value to the waiting task's entry.
        writer.write(42).unwrap();
        drop(read); // the task never looked at it
        assert_eq!(
            reader.read().unwrap(),
            42,
            "the value went back to the channel"
        );
    });
}

#[test]
fn a_write_whose_future_is_dropped_before_a_reader_came_is_withdrawn() {
    within("dropping a waiting write", || {
        let channel = Channel::<u32>::new();
        let (reader, writer) = (channel.reader(), channel.writer());
        let mut write: Pin<Box<dyn Future<Output = _>>> = Box::pin(writer.write_async(5));
        let mut context = Context::from_waker(Waker::noop());
        assert!(write.as_mut().poll(&mut context).is_pending());
        drop(write);
        assert!(
            reader.try_read().is_err(),
            "the withdrawn value is not offered"
        );
    });
}

#[test]
fn timed_async_operations_time_out_and_hand_the_value_back() {
    within("async timeouts", || {
        let (writer, reader) = csp::channel::<u32>();
        csp::block_on(async {
            let short = std::time::Duration::from_millis(20);
            assert!(matches!(
                reader.read_timeout_async(short).await,
                Err(csp::ReadTimeoutError::Timeout { .. })
            ));
            let error = writer.write_timeout_async(3, short).await.unwrap_err();
            assert_eq!(error.into_value(), 3);
        });
    });
}

#[test]
fn a_lightweight_process_can_be_placed_in_an_os_process() {
    let channel = Channel::new();
    let (_, total) = parallel![
        produce(channel.writer(), 100).os().unwrap(),
        sum(channel.reader()),
    ]
    .run_timeout(LIMIT)
    .unwrap();
    assert_eq!(total, (0..100).sum::<u64>());
}

/// Merges two channels fairly until both are retired.
#[process]
async fn merge(left: Reader<u64>, right: Reader<u64>, out: Writer<u64>) -> Result<(), csp::Error> {
    let mut alternation = Alternation::fair();
    let (mut left_open, mut right_open) = (true, true);
    while left_open || right_open {
        let next = select_async! {
            &mut alternation;
            v = read(left), if left_open => Some(v),
            v = read(right), if right_open => Some(v),
        };
        match next {
            Ok(Some(v)) => out.write_async(v).await?,
            Ok(None) => {}
            Err(csp::SelectError::Channel { guard: 0, .. }) => left_open = false,
            Err(csp::SelectError::Channel { .. }) => right_open = false,
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

#[test]
fn an_async_alternation_merges_tasks_and_threads_fairly() {
    let (left, right, out) = (Channel::new(), Channel::new(), Channel::new());
    let (_, _, merged, received) = parallel![
        produce(left.writer(), 200),
        produce_on_a_thread(right.writer(), 200),
        merge(left.reader(), right.reader(), out.writer()),
        sum_on_a_thread(out.reader()),
    ]
    .run_timeout(LIMIT)
    .unwrap();
    merged.unwrap();
    assert_eq!(received, 2 * (0..200).sum::<u64>());
}

#[test]
fn an_async_choice_times_out_and_a_dropped_choice_keeps_a_value_it_was_handed() {
    within("async choices", || {
        let (writer, reader) = csp::channel::<u32>();
        let chosen = csp::block_on(async {
            select_async! {
                v = read(reader) => v,
                timeout(std::time::Duration::from_millis(20)) => 0,
            }
        });
        assert_eq!(chosen.unwrap(), 0);
        // A choice handed a value, then dropped: the value stays in its guard.
        let mut guard = csp::InputGuard::new(&reader);
        {
            let mut alternation = Alternation::priority();
            let mut guards = [&mut guard as &mut (dyn csp::Guard + Send)];
            let mut choice = Box::pin(alternation.select_async(&mut guards));
            let mut context = Context::from_waker(Waker::noop());
            assert!(choice.as_mut().poll(&mut context).is_pending());
            writer.write(8).unwrap(); // handed to the waiting choice
        }
        assert_eq!(guard.take(), Some(8));
    });
}

/// Marks its own flag, then computes (never awaiting) until it sees the other's, or gives
/// up after `LIMIT`: true if both ran at the same time.
#[process]
async fn meet(
    mine: std::sync::Arc<std::sync::atomic::AtomicBool>,
    other: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> bool {
    use std::sync::atomic::Ordering;
    mine.store(true, Ordering::Release);
    let started = std::time::Instant::now();
    while !other.load(Ordering::Acquire) {
        if started.elapsed() > LIMIT {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

#[test]
fn a_network_of_tasks_uses_every_core() {
    if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
        eprintln!("one CPU only: nothing to show");
        return;
    }
    let (a, b) = (
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    // Both spawned: both run on the pool's threads (a `parallel!` would run the last on
    // this thread).
    let first = meet(std::sync::Arc::clone(&a), std::sync::Arc::clone(&b)).spawn();
    let second = meet(b, a).spawn();
    let first = first.join_timeout(LIMIT * 2).expect("the first task ends");
    let second = second
        .join_timeout(LIMIT * 2)
        .expect("the second task ends");
    assert!(
        first && second,
        "the two computing tasks never ran at the same time"
    );
}

#[process]
async fn read_one_and_end(input: Reader<u32>) -> u32 {
    input.read_async().await.unwrap_or(0)
}

/// Starts a reader, writes to it once it waits (which wakes it onto this task's thread),
/// then joins it with a blocking `join` inside the task.
#[process]
async fn wake_then_join() -> u32 {
    let channel = Channel::named("to the joined");
    let writer = channel.writer();
    let joined = read_one_and_end(channel.reader()).spawn();
    drop(channel);
    common::until_a_reader_waits(&writer);
    writer.write_async(7).await.expect("the reader takes it");
    joined.join().expect("the joined process ends") // blocks this pool thread
}

/// A task that wakes a process and then blocks its thread joining it: the process it woke
/// runs on another thread meanwhile (it is not kept back for the blocked one).
#[test]
fn a_task_can_join_a_process_it_just_woke() {
    if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
        eprintln!("one CPU only: nothing to show");
        return;
    }
    let got = wake_then_join()
        .spawn()
        .join_timeout(LIMIT)
        .expect("the joining task ends");
    assert_eq!(got, 7);
}
