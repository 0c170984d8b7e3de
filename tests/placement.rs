//! Processes placed in separate OS processes: results, failures, refusals, isolation.

mod common;

use std::sync::Mutex;

use common::LIMIT;
use csp::RunError;
use csp::prelude::*;

csp::child_entry!();

#[process(placeable)]
fn identify(label: String) -> (String, u32) {
    (label, std::process::id())
}

#[test]
fn a_process_runs_in_another_os_process_and_returns_its_result() {
    let (label, pid) = identify("child".into())
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap();
    assert_eq!(label, "child");
    assert_ne!(pid, std::process::id(), "it ran in this OS process");
}

#[test]
fn one_composition_mixes_threads_and_os_processes() {
    let (a, b, c) = parallel![
        identify("a".into()).os().unwrap(),
        identify("b".into()),
        identify("c".into()).os().unwrap(),
    ]
    .run_timeout(LIMIT)
    .unwrap();
    assert_eq!((a.0.as_str(), b.0.as_str(), c.0.as_str()), ("a", "b", "c"));
    assert_eq!(b.1, std::process::id());
    assert!(
        a.1 != b.1 && c.1 != b.1 && a.1 != c.1,
        "three OS processes: {a:?} {b:?} {c:?}"
    );
}

#[process]
fn explode_in_child(message: String) -> u8 {
    panic!("{message}");
}

#[test]
fn a_panic_in_a_child_is_reported_with_its_message() {
    match explode_in_child("boom in the child".into())
        .os()
        .unwrap()
        .run_timeout(LIMIT)
    {
        Err(RunError::Panicked { process, message }) => {
            assert_eq!(process, "placement::explode_in_child");
            assert_eq!(message, "boom in the child");
        }
        other => panic!("expected the child's panic, got {other:?}"),
    }
}

#[process]
fn exit_early(code: i32) -> u8 {
    std::process::exit(code);
}

#[test]
fn a_child_that_exits_early_is_reported_with_its_exit_code() {
    match exit_early(7).os().unwrap().run_timeout(LIMIT) {
        Err(RunError::ChildDied { process, status }) => {
            assert_eq!(process, "placement::exit_early");
            assert_eq!(status, "exited with code 7");
        }
        other => panic!("expected the child's death, got {other:?}"),
    }
}

#[process]
fn kill_myself(signal: String) -> u8 {
    let me = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args([signal.as_str(), me.as_str()])
        .status();
    std::thread::sleep(std::time::Duration::from_secs(30));
    0
}

#[test]
fn a_child_killed_with_sigkill_is_reported_not_waited_for() {
    match kill_myself("-9".into()).os().unwrap().run_timeout(LIMIT) {
        Err(RunError::ChildDied { status, .. }) => assert_eq!(status, "killed by SIGKILL"),
        other => panic!("expected the child's death, got {other:?}"),
    }
}

#[process]
fn abort_now(_reason: String) -> u8 {
    std::process::abort();
}

#[test]
fn an_aborted_child_is_reported() {
    match abort_now("test".into()).os().unwrap().run_timeout(LIMIT) {
        Err(RunError::ChildDied { status, .. }) => assert_eq!(status, "killed by SIGABRT"),
        other => panic!("expected the child's death, got {other:?}"),
    }
}

static RESULTS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[process]
fn square_into_global(numbers: Vec<u64>) -> Vec<u64> {
    let mut results = RESULTS.lock().unwrap();
    results.extend(numbers.iter().map(|n| n * n));
    results.clone()
}

#[test]
fn a_child_has_its_own_memory() {
    // The seed's example: a child changes a global list; the parent's stays as it was.
    let in_child = square_into_global(vec![1, 2, 3, 4])
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap();
    assert_eq!(in_child, [1, 4, 9, 16]);
    assert!(
        RESULTS.lock().unwrap().is_empty(),
        "the parent's global changed"
    );
}

#[process]
fn place_a_grandchild(label: String) -> Result<(u32, u32), RunError> {
    let (_, grandchild) = identify(label).os()?.run()?;
    Ok((std::process::id(), grandchild))
}

#[test]
fn a_child_can_place_processes_of_its_own() {
    let (child, grandchild) = place_a_grandchild("nested".into())
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap()
        .unwrap();
    let me = std::process::id();
    assert!(child != me && grandchild != me && child != grandchild);
}

#[process]
fn holds_an_instant(started: std::time::Instant) -> u8 {
    u8::from(started.elapsed().as_secs() > 0)
}

#[test]
fn placement_is_refused_clearly_when_it_cannot_work() {
    let reason = |result: Result<Process<u8>, RunError>| match result {
        Err(RunError::Placement { reason, .. }) => reason,
        Ok(_) => panic!("placement was accepted"),
        Err(other) => panic!("unexpected error {other}"),
    };
    let not_serializable = reason(holds_an_instant(std::time::Instant::now()).os());
    assert!(not_serializable.contains("Serialize"), "{not_serializable}");
    let closure = reason(Process::new("closure", || 1u8).os());
    assert!(closure.contains("closure"), "{closure}");
}

#[process]
fn generic_identity<T: Send + 'static>(value: T) -> T {
    value
}

#[test]
fn generic_processes_are_not_placeable() {
    match generic_identity(5u8).os() {
        Err(RunError::Placement { reason, .. }) => assert!(reason.contains("generic"), "{reason}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn the_registry_holds_this_binarys_processes() {
    csp::registry::check().unwrap();
}

#[process]
fn report_pid_then_count(out: Writer<u64>, count: u64) -> Result<(), csp::Error> {
    out.write(u64::from(std::process::id()))?;
    for n in 0..count {
        out.write(n)?;
    }
    Ok(())
}

/// The composition's handle on a child dropped at once: the child runs on, its channel
/// works and retires when it ends, and it is reaped then (no zombie is left behind).
#[test]
fn a_child_whose_handle_is_dropped_runs_on_and_is_reaped_when_it_ends() {
    let channel = Channel::named("detached");
    let reader = channel.reader();
    drop(
        report_pid_then_count(channel.writer(), 5)
            .os()
            .unwrap()
            .spawn(),
    );
    drop(channel);
    let pid = reader.read_timeout(LIMIT).unwrap();
    assert_ne!(
        pid,
        u64::from(std::process::id()),
        "it runs in another OS process"
    );
    let counted: Vec<u64> = (0..5)
        .map(|_| reader.read_timeout(LIMIT).unwrap())
        .collect();
    assert_eq!(counted, [0, 1, 2, 3, 4]);
    let ended = reader.read_timeout(LIMIT);
    assert!(common::retired(&ended), "{ended:?}");
    let process = std::path::PathBuf::from(format!("/proc/{pid}"));
    let started = std::time::Instant::now();
    while process.exists() {
        let status = std::fs::read_to_string(process.join("status")).unwrap_or_default();
        assert!(
            started.elapsed() < LIMIT,
            "child {pid} was not reaped: {}",
            status
                .lines()
                .find(|line| line.starts_with("State"))
                .unwrap_or("")
        );
        std::thread::yield_now();
    }
}
