//! Deliberate deadlocks end with an error naming the processes and what they wait on; a
//! network that is only slow (a timeout pending, a process computing) is never reported.

mod common;

use std::time::Duration;

use common::LIMIT;
use csp::RunError;
use csp::prelude::*;

csp::child_entry!();

/// Runs `process` on this thread with `run` (a wait the deadlock monitor counts, unlike a
/// timed one), with a watchdog that fails the test binary if it is still running after
/// [`LIMIT`]. The watchdog uses no channel, so the monitor does not count it.
fn run_bounded<R: Send + 'static>(process: Process<R>) -> Result<R, RunError> {
    let (done, watched) = std::sync::mpsc::channel::<()>();
    let name = process.name().to_string();
    let watchdog = std::thread::spawn(move || {
        if watched.recv_timeout(LIMIT) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            eprintln!("{name}: still running after {LIMIT:?}: the deadlock was not found");
            std::process::exit(101);
        }
    });
    let result = process.run();
    let _ = done.send(());
    let _ = watchdog.join();
    result
}

fn report_of<R: std::fmt::Debug>(result: Result<R, RunError>) -> String {
    match result {
        Err(RunError::Deadlock { report }) => report,
        other => panic!("expected a deadlock, got {other:?}"),
    }
}

#[process]
fn read_then_write(input: Reader<u32>, output: Writer<u32>) -> Result<(), csp::Error> {
    let value = input.read()?;
    output.write(value)?;
    Ok(())
}

fn two_processes_each_waiting_to_read_from_the_other_are_reported_with_their_cycle() {
    let (ab, ba) = (Channel::named("a to b"), Channel::named("b to a"));
    let result = run_bounded(parallel![
        read_then_write(ba.reader(), ab.writer()).named("a"),
        read_then_write(ab.reader(), ba.writer()).named("b"),
    ]);
    let report = report_of(result);
    assert!(report.contains("a is reading 'b to a'"), "{report}");
    assert!(report.contains("b is reading 'a to b'"), "{report}");
    assert!(
        report.contains("cycle: a -> b -> a") || report.contains("cycle: b -> a -> b"),
        "{report}"
    );
}

#[process]
async fn read_then_write_task(input: Reader<u32>, output: Writer<u32>) -> Result<(), csp::Error> {
    let value = input.read_async().await?;
    output.write_async(value).await?;
    Ok(())
}

fn the_same_deadlock_between_lightweight_processes_is_reported() {
    let (ab, ba) = (Channel::named("a to b"), Channel::named("b to a"));
    let result = run_bounded(parallel![
        read_then_write_task(ba.reader(), ab.writer()).named("a"),
        read_then_write_task(ab.reader(), ba.writer()).named("b"),
    ]);
    let report = report_of(result);
    assert!(report.contains("a is reading 'b to a'"), "{report}");
    assert!(report.contains("b is reading 'a to b'"), "{report}");
}

/// A lightweight process that makes a blocking call: its executor thread sleeps in it.
#[process]
async fn read_blocking_then_write_task(
    input: Reader<u32>,
    output: Writer<u32>,
) -> Result<(), csp::Error> {
    let value = input.read()?;
    output.write_async(value).await?;
    Ok(())
}

fn a_cycle_through_a_task_that_blocks_its_thread_is_reported() {
    let (ab, ba) = (Channel::named("a to b"), Channel::named("b to a"));
    let result = run_bounded(parallel![
        read_blocking_then_write_task(ba.reader(), ab.writer()).named("a"),
        read_then_write(ab.reader(), ba.writer()).named("b"),
    ]);
    let report = report_of(result);
    assert!(report.contains("a is reading 'b to a'"), "{report}");
    assert!(report.contains("b is reading 'a to b'"), "{report}");
}

/// Longer than twice the monitor's grace (its watcher may be a grace into another look when
/// the wait begins): a standstill this long would be declared.
const LONGER_THAN_GRACE: Duration = Duration::from_millis(2500);

#[process]
async fn answer_after_a_long_timeout_task(
    input: Reader<u32>,
    output: Writer<u32>,
) -> Result<u32, csp::Error> {
    match input.read_timeout_async(LONGER_THAN_GRACE).await {
        Ok(v) => Ok(v),
        Err(_) => {
            output.write_async(7).await?;
            Ok(0)
        }
    }
}

#[process]
async fn compute_long_then_write_task(output: Writer<u32>) -> Result<(), csp::Error> {
    std::thread::sleep(LONGER_THAN_GRACE); // computing, holding its executor thread
    output.write_async(1).await?;
    Ok(())
}

#[process]
async fn read_one_task(input: Reader<u32>) -> Result<u32, csp::Error> {
    Ok(input.read_async().await?)
}

/// Every other process waits for ever while one task awaits a timeout, or computes, for
/// longer than the grace: never reported (tasks are counted through the executor's
/// threads and their own marks, not one by one).
fn a_network_of_tasks_that_is_only_slow_is_never_reported() {
    let (unused, answers) = (Channel::new(), Channel::new());
    let (timed, read) = run_bounded(parallel![
        answer_after_a_long_timeout_task(unused.reader(), answers.writer()),
        read_one_task(answers.reader()),
    ])
    .expect("no deadlock: a task's timeout was pending");
    drop(unused);
    assert_eq!((timed.unwrap(), read.unwrap()), (0, 7));

    let late = Channel::new();
    let (computed, got) = run_bounded(parallel![
        compute_long_then_write_task(late.writer()),
        read_one_task(late.reader()),
    ])
    .expect("no deadlock: a task was computing");
    assert_eq!((computed.is_ok(), got.unwrap()), (true, 1));
}

/// A fork: taken by either neighbour, then put back by the same one.
#[process]
fn fork(left: Reader<()>, right: Reader<()>) -> Result<(), csp::Error> {
    loop {
        let by_left = select! {
            _ = read(left) => true,
            _ = read(right) => false,
        }?;
        if by_left {
            left.read()?
        } else {
            right.read()?
        };
    }
}

/// Takes its left fork, thinks a while, then its right fork: without a butler, all of them
/// end up holding one fork each.
#[process]
fn philosopher(left: Writer<()>, right: Writer<()>) -> Result<(), csp::Error> {
    left.write(())?;
    std::thread::sleep(Duration::from_millis(30));
    right.write(())?;
    right.write(())?;
    left.write(())?;
    Ok(())
}

/// The philosopher as a lightweight process: it thinks by awaiting a timeout guard, so
/// that every philosopher takes its left fork before any reaches for its right.
#[process]
async fn philosopher_task(left: Writer<()>, right: Writer<()>) -> Result<(), csp::Error> {
    left.write_async(()).await?;
    select_async! { timeout(Duration::from_millis(30)) => () }?;
    right.write_async(()).await?;
    right.write_async(()).await?;
    left.write_async(()).await?;
    Ok(())
}

/// Where the philosophers of a ring run (the forks run on threads).
#[derive(Clone, Copy)]
enum Seated {
    OnThreads,
    AsTasks,
    InChildOsProcesses,
}

/// A ring of five philosophers without the butler: each takes its left fork, then waits for
/// its right one for ever.
fn report_of_a_philosopher_ring(seated: Seated) -> String {
    const SEATS: usize = 5;
    let as_left: Vec<Channel<()>> = (0..SEATS)
        .map(|i| Channel::named(format!("fork {i} (left)")))
        .collect();
    let as_right: Vec<Channel<()>> = (0..SEATS)
        .map(|i| Channel::named(format!("fork {i} (right)")))
        .collect();
    let forks = Parallel::of(
        (0..SEATS)
            .map(|i| fork(as_left[i].reader(), as_right[i].reader()).named(format!("fork {i}"))),
    );
    let philosophers = Parallel::of((0..SEATS).map(|i| {
        let (left, right) = (as_left[i].writer(), as_right[(i + 1) % SEATS].writer());
        let name = format!("philosopher {i}");
        match seated {
            Seated::OnThreads => philosopher(left, right).named(name),
            Seated::AsTasks => philosopher_task(left, right).named(name),
            Seated::InChildOsProcesses => philosopher(left, right).named(name).os().unwrap(),
        }
    }));
    drop((as_left, as_right));
    let report = report_of(run_bounded(parallel![forks, philosophers]));
    for i in 0..SEATS {
        let right = (i + 1) % SEATS;
        assert!(
            report.contains(&format!(
                "philosopher {i} is writing 'fork {right} (right)'"
            )),
            "{report}"
        );
    }
    assert!(report.contains("cycle:"), "{report}");
    report
}

fn a_philosopher_ring_without_the_butler_is_reported_in_every_placement() {
    report_of_a_philosopher_ring(Seated::OnThreads);
    report_of_a_philosopher_ring(Seated::AsTasks);
    let report = report_of_a_philosopher_ring(Seated::InChildOsProcesses);
    assert!(report.contains("(in OS process"), "{report}");
}

#[process]
fn choose_with_one_live_guard_disabled(
    from_b: Reader<u32>,
    never: Reader<u32>,
    to_b: Writer<u32>,
) -> Result<u32, csp::Error> {
    let got = select! {
        v = read(from_b), if false => v,
        v = read(never) => v,
    }?;
    to_b.write(got)?;
    Ok(got)
}

/// Runs the chooser (in a child OS process if `chooser_in_child`) with `b`, which waits for
/// it, and an idler that holds the only writer of `never` and waits for nobody: a deadlock.
fn report_of_a_choice_whose_only_live_guard_is_disabled(chooser_in_child: bool) -> String {
    let (from_b, never, to_b) = (
        Channel::named("from b"),
        Channel::named("never"),
        Channel::named("to b"),
    );
    let chooser =
        choose_with_one_live_guard_disabled(from_b.reader(), never.reader(), to_b.writer())
            .named("chooser");
    let chooser = if chooser_in_child {
        chooser.os().unwrap()
    } else {
        chooser
    };
    let result = run_bounded(parallel![
        chooser,
        read_then_write(to_b.reader(), from_b.writer()).named("b"),
        // Holds the other end of `never` and waits for `b`: nobody will write `never`.
        read_then_write(Channel::named("idle").reader(), never.writer()).named("idler"),
    ]);
    drop((from_b, never, to_b));
    report_of(result)
}

#[process]
async fn choose_with_one_live_guard_disabled_task(
    from_b: Reader<u32>,
    never: Reader<u32>,
    to_b: Writer<u32>,
) -> Result<u32, csp::Error> {
    let got = select_async! {
        v = read(from_b), if false => v,
        v = read(never) => v,
    }?;
    to_b.write_async(got).await?;
    Ok(got)
}

/// The same as a lightweight process: its mark describes the choice.
fn an_alternation_of_a_task_whose_only_live_guard_is_disabled_is_reported() {
    let (from_b, never, to_b) = (
        Channel::named("from b"),
        Channel::named("never"),
        Channel::named("to b"),
    );
    let result = run_bounded(parallel![
        choose_with_one_live_guard_disabled_task(from_b.reader(), never.reader(), to_b.writer())
            .named("chooser"),
        read_then_write_task(to_b.reader(), from_b.writer()).named("b"),
        read_then_write(Channel::named("idle").reader(), never.writer()).named("idler"),
    ]);
    drop((from_b, never, to_b));
    let report = report_of(result);
    assert!(
        report.contains("chooser is choosing among [read 'never']"),
        "{report}"
    );
    assert!(report.contains("b is reading 'to b'"), "{report}");
}

fn an_alternation_whose_only_live_guard_has_a_false_precondition_is_reported() {
    let report = report_of_a_choice_whose_only_live_guard_is_disabled(false);
    assert!(
        report.contains("chooser is choosing among [read 'never']"),
        "{report}"
    );
    assert!(report.contains("b is reading 'to b'"), "{report}");
}

#[process]
fn answer_after_a_timeout(input: Reader<u32>, output: Writer<u32>) -> Result<u32, csp::Error> {
    match input.read_timeout(LONGER_THAN_GRACE) {
        Ok(v) => Ok(v),
        Err(_) => {
            output.write(7)?;
            Ok(0)
        }
    }
}

#[process]
fn compute_then_write(output: Writer<u32>) -> Result<(), csp::Error> {
    std::thread::sleep(LONGER_THAN_GRACE); // computing: not blocked
    output.write(1)?;
    Ok(())
}

fn a_network_that_is_only_slow_is_never_reported() {
    let (unused, answers, late) = (Channel::new(), Channel::new(), Channel::new());
    let (timed, read, computed, got) = run_bounded(parallel![
        answer_after_a_timeout(unused.reader(), answers.writer()),
        Process::new("reader", {
            let answers = answers.reader();
            move || answers.read()
        }),
        compute_then_write(late.writer()),
        Process::new("waiter", {
            let late = late.reader();
            move || late.read()
        }),
    ])
    .expect("no deadlock: a timeout was pending, then a process was computing");
    drop(unused);
    assert_eq!(
        (
            timed.unwrap(),
            read.unwrap(),
            computed.is_ok(),
            got.unwrap()
        ),
        (0, 7, true, 1)
    );
}

/// The monitor sees every actor of this OS process, so the scenarios run one after another:
/// tests running beside them on other threads would count as running actors.
#[test]
fn deadlocks_are_reported_and_slow_networks_are_not() {
    with_detection_off_a_deadlock_is_left_alone_until_it_is_turned_on();
    a_deadlock_inside_a_child_os_process_is_reported_to_the_parent();
    two_processes_each_waiting_to_read_from_the_other_are_reported_with_their_cycle();
    the_same_deadlock_between_lightweight_processes_is_reported();
    a_cycle_through_a_task_that_blocks_its_thread_is_reported();
    a_network_of_tasks_that_is_only_slow_is_never_reported();
    a_philosopher_ring_without_the_butler_is_reported_in_every_placement();
    an_alternation_whose_only_live_guard_has_a_false_precondition_is_reported();
    an_alternation_of_a_task_whose_only_live_guard_is_disabled_is_reported();
    a_network_that_is_only_slow_is_never_reported();
    a_cycle_between_a_thread_and_a_child_os_process_is_reported();
    a_cycle_between_two_child_os_processes_is_reported();
    a_network_across_os_processes_that_is_only_slow_is_never_reported();
    an_alternation_in_a_child_os_process_whose_only_live_guard_is_disabled_is_reported();
}

fn an_alternation_in_a_child_os_process_whose_only_live_guard_is_disabled_is_reported() {
    let report = report_of_a_choice_whose_only_live_guard_is_disabled(true);
    assert!(
        report.contains("chooser is choosing among [read 'never'] (in OS process"),
        "{report}"
    );
    assert!(report.contains("b is reading 'to b'"), "{report}");
}

fn assert_the_two_are_reported(report: &str) {
    assert!(report.contains("a is reading 'b to a'"), "{report}");
    assert!(report.contains("b is reading 'a to b'"), "{report}");
    assert!(
        report.contains("cycle: a -> b -> a") || report.contains("cycle: b -> a -> b"),
        "{report}"
    );
}

/// A cycle that spans OS processes is found at the top of the network: the child says its
/// process is blocked, the parent sees its own blocked too.
fn a_cycle_between_a_thread_and_a_child_os_process_is_reported() {
    let (ab, ba) = (Channel::named("a to b"), Channel::named("b to a"));
    let result = run_bounded(parallel![
        read_then_write(ba.reader(), ab.writer()).named("a"),
        read_then_write(ab.reader(), ba.writer())
            .named("b")
            .os()
            .unwrap(),
    ]);
    drop((ab, ba));
    assert_the_two_are_reported(&report_of(result));
}

fn a_cycle_between_two_child_os_processes_is_reported() {
    let (ab, ba) = (Channel::named("a to b"), Channel::named("b to a"));
    let result = run_bounded(parallel![
        read_then_write(ba.reader(), ab.writer())
            .named("a")
            .os()
            .unwrap(),
        read_then_write(ab.reader(), ba.writer())
            .named("b")
            .os()
            .unwrap(),
    ]);
    drop((ab, ba));
    assert_the_two_are_reported(&report_of(result));
}

#[process]
fn compute_long_then_write(output: Writer<u32>) -> Result<(), csp::Error> {
    // Longer than a child's quiet time and the parent's grace together.
    std::thread::sleep(csp::deadlock::GRACE * 2);
    output.write(1)?;
    Ok(())
}

#[process]
fn read_one(input: Reader<u32>) -> Result<u32, csp::Error> {
    Ok(input.read()?)
}

/// A child waiting on a parent that computes, and a parent waiting on a child that computes:
/// slow, not deadlocked.
fn a_network_across_os_processes_that_is_only_slow_is_never_reported() {
    let (down, up) = (Channel::named("down"), Channel::named("up"));
    let (computed_here, read_there, computed_there, read_here) = run_bounded(parallel![
        compute_long_then_write(down.writer()),
        read_one(down.reader()).os().unwrap(),
        compute_long_then_write(up.writer()).os().unwrap(),
        read_one(up.reader()),
    ])
    .expect("no deadlock: one process computed in each OS process");
    drop((down, up));
    assert!(computed_here.is_ok() && computed_there.is_ok());
    assert_eq!((read_there.unwrap(), read_here.unwrap()), (1, 1));
}

#[process]
fn deadlock_inside() -> Result<(), String> {
    let (ab, ba) = (Channel::named("a to b"), Channel::named("b to a"));
    let network = parallel![
        read_then_write(ba.reader(), ab.writer()).named("a"),
        read_then_write(ab.reader(), ba.writer()).named("b"),
    ];
    drop((ab, ba));
    network.run().map(drop).map_err(|error| error.to_string())
}

/// A deadlock among the processes of a child OS process is found there, and the child
/// reports it to the parent as its result.
fn a_deadlock_inside_a_child_os_process_is_reported_to_the_parent() {
    let report = report_of(run_bounded(deadlock_inside().os().unwrap()));
    assert!(report.contains("a is reading 'b to a'"), "{report}");
    assert!(report.contains("cycle: a -> b -> a"), "{report}");
}

/// Turned off, the monitor leaves a deadlock alone; turned on again, it reports it.
fn with_detection_off_a_deadlock_is_left_alone_until_it_is_turned_on() {
    csp::deadlock::set_detection(false);
    // A thread that uses no channel (so it is no actor) turns detection back on later.
    let off_for = csp::deadlock::GRACE * 2;
    let switch = std::thread::spawn(move || {
        std::thread::sleep(off_for);
        csp::deadlock::set_detection(true);
    });
    let (ab, ba) = (Channel::named("a to b"), Channel::named("b to a"));
    let network = parallel![
        read_then_write(ba.reader(), ab.writer()).named("a"),
        read_then_write(ab.reader(), ba.writer()).named("b"),
    ];
    drop((ab, ba));
    let started = std::time::Instant::now();
    let report = report_of(run_bounded(network));
    assert!(
        started.elapsed() >= off_for,
        "reported after {:?}, while detection was still off",
        started.elapsed()
    );
    assert!(report.contains("a is reading 'b to a'"), "{report}");
    switch.join().unwrap();
}
