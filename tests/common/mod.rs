//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The bound on any single test scenario: a hang fails the test within this time.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Runs `f` on its own thread and returns its result, failing the test if it does not finish
/// within [`LIMIT`] (a deadlock) or panics.
#[track_caller]
pub fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (sender, receiver) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = sender.send(f());
    });
    match receiver.recv_timeout(LIMIT) {
        Ok(result) => {
            worker.join().expect("the worker thread ended");
            result
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still blocked after {LIMIT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let panic = worker
                .join()
                .expect_err("no result means the worker panicked");
            std::panic::resume_unwind(panic)
        }
    }
}

/// Starts `f` on a thread; join it with [`join`].
pub fn start<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(f());
    });
    receiver
}

/// Waits for a thread started by [`start`], at most [`LIMIT`].
#[track_caller]
pub fn join<R>(what: &str, started: mpsc::Receiver<R>) -> R {
    started
        .recv_timeout(LIMIT)
        .unwrap_or_else(|error| panic!("{what}: no result within {LIMIT:?} ({error})"))
}

/// Asserts that a thread started by [`start`] is still blocked after `wait`: used to show that
/// an operation does NOT complete (for example a rendezvous write with no reader). A false pass
/// is impossible: if it completed, its result arrives and the assertion fails.
#[track_caller]
pub fn still_blocked<R>(what: &str, started: &mpsc::Receiver<R>, wait: Duration) {
    match started.recv_timeout(wait) {
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        Ok(_) => panic!("{what}: completed, but it should still be blocked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the thread panicked"),
    }
}

/// Waits (bounded by [`LIMIT`]) until a reader waits on the channel of `end` (a channel or
/// one of its ends), as its `Debug` shows.
pub fn until_a_reader_waits(end: &impl std::fmt::Debug) {
    let started = std::time::Instant::now();
    while !format!("{end:?}").contains("blocked_readers: 1") {
        assert!(started.elapsed() < LIMIT, "no reader came to wait: {end:?}");
        thread::yield_now();
    }
}

/// Sends SIGKILL to the OS process `pid` (a child a test kills mid-run).
pub fn kill_9(pid: impl std::fmt::Display) {
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("running kill");
}

/// Whether a read with a timeout ended because its channel retired (not by timing out).
pub fn retired<T>(read: &Result<T, csp::ReadTimeoutError>) -> bool {
    matches!(
        read,
        Err(csp::ReadTimeoutError::Channel(
            csp::ChannelError::Retired { .. }
        ))
    )
}
