//! Channel ends passed to processes in other OS processes: the same semantics as on threads.

mod common;

use std::time::{Duration, Instant};

use common::{LIMIT, join, kill_9, start, still_blocked, until_a_reader_waits};
use csp::prelude::*;
use csp::{ChannelError, RunError};

csp::child_entry!();

#[process]
fn produce(out: Writer<u64>, from: u64, count: u64) -> Result<u32, csp::Error> {
    for n in from..from + count {
        out.write(n)?;
    }
    Ok(std::process::id())
}

#[process]
fn consume(input: Reader<u64>) -> (Vec<u64>, u32) {
    (input.iter().collect(), std::process::id())
}

#[test]
fn a_child_writes_and_the_parent_reads_until_the_child_retires() {
    let channel = Channel::named("numbers");
    let reader = channel.reader();
    let child = produce(channel.writer(), 1, 5).os().unwrap().spawn();
    let got: Vec<u64> = reader.iter().collect(); // ends when the child's end retires
    assert_eq!(got, [1, 2, 3, 4, 5]);
    let pid = child.join_timeout(LIMIT).unwrap().unwrap();
    assert_ne!(pid, std::process::id());
}

#[test]
fn a_rendezvous_write_to_a_reader_in_a_child_waits_for_it() {
    let channel = Channel::<u64>::new();
    let writer = channel.writer();
    let child = consume(channel.reader()).os().unwrap().spawn();
    for n in 0..3 {
        writer.write(n).unwrap();
    }
    drop(writer);
    let (got, pid) = child.join_timeout(LIMIT).unwrap();
    assert_eq!(got, [0, 1, 2]);
    assert_ne!(pid, std::process::id());
}

#[test]
fn producers_and_consumers_spread_over_several_os_processes() {
    let channel = Channel::named("shared");
    let (a, b, c, d) = parallel![
        produce(channel.writer(), 0, 50).os().unwrap(),
        produce(channel.writer(), 100, 50).os().unwrap(),
        consume(channel.reader()).os().unwrap(),
        consume(channel.reader()).os().unwrap(),
    ]
    .run_timeout(LIMIT)
    .unwrap();
    assert!(a.is_ok() && b.is_ok());
    let pids = [a.unwrap(), b.unwrap(), c.1, d.1];
    let distinct: std::collections::HashSet<_> = pids.iter().collect();
    assert_eq!(distinct.len(), 4, "four OS processes: {pids:?}");
    let mut all: Vec<u64> = c.0.into_iter().chain(d.0).collect();
    all.sort_unstable();
    let expected: Vec<u64> = (0..50).chain(100..150).collect();
    assert_eq!(all, expected, "every message exactly once");
}

#[test]
fn a_buffered_channel_across_processes_lets_writes_finish_without_a_reader() {
    let channel = Channel::<u64>::buffered(4);
    let reader = channel.reader();
    let pid = produce(channel.writer(), 7, 4)
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap()
        .unwrap();
    assert_ne!(pid, std::process::id());
    assert_eq!(channel.len(), 4, "the child's writes are buffered at home");
    assert_eq!(reader.iter().collect::<Vec<_>>(), [7, 8, 9, 10]);
}

#[process]
fn poison_after(out: Writer<u64>, count: u64) -> Result<(), csp::Error> {
    for n in 0..count {
        out.write(n)?;
    }
    out.poison();
    Ok(())
}

#[test]
fn poison_from_a_child_reaches_the_parent() {
    let channel = Channel::<u64>::new();
    let reader = channel.reader();
    let child = poison_after(channel.writer(), 2).os().unwrap().spawn();
    assert_eq!(reader.read().unwrap(), 0);
    assert_eq!(reader.read().unwrap(), 1);
    assert!(reader.read().unwrap_err().is_poisoned());
    child.join_timeout(LIMIT).unwrap().unwrap();
}

#[process]
fn relay(input: Reader<u64>, out: Writer<u64>) -> Result<(), ChannelError> {
    loop {
        out.write(input.read()?)?;
    }
}

#[test]
fn poison_propagates_through_a_process_in_a_child() {
    let (a, b) = (Channel::<u64>::named("a"), Channel::<u64>::named("b"));
    let (source, sink) = (a.writer(), b.reader());
    let child = relay(a.reader(), b.writer()).os().unwrap().spawn();
    source.write(5).unwrap();
    assert_eq!(sink.read().unwrap(), 5);
    sink.poison(); // the relay's next write fails; it passes the poison on to `a`
    source.write(6).unwrap(); // taken by the relay, which then finds `b` poisoned
    let ended = child.join_timeout(LIMIT).unwrap();
    assert!(ended.unwrap_err().is_poisoned());
    assert!(
        source.write(7).unwrap_err().error.is_poisoned(),
        "the poison came back to `a`"
    );
}

#[process]
fn hold_and_hang(input: Reader<u64>, report: Writer<u32>) -> u64 {
    let _keep = &input;
    let _ = report.write(std::process::id()); // proves the ends are attached
    std::thread::sleep(Duration::from_secs(60));
    0
}

#[test]
fn a_child_killed_while_holding_ends_poisons_them_promptly() {
    let (channel, pids) = (Channel::<u64>::named("held"), Channel::<u32>::new());
    let writer = channel.writer();
    let child = hold_and_hang(channel.reader(), pids.writer()).os().unwrap();
    let running = start(move || child.run());
    let pid = pids
        .reader()
        .read_timeout(LIMIT)
        .expect("the child reports its pid");
    let blocked = start(move || writer.write(1));
    still_blocked("a write nobody reads", &blocked, Duration::from_millis(100));
    let killed = Instant::now();
    kill_9(pid);
    let error = join("the blocked write", blocked).unwrap_err();
    assert!(error.error.is_poisoned(), "{}", error.error);
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "poisoned after {:?}",
        killed.elapsed()
    );
    match join("the composition", running) {
        Err(RunError::ChildDied { status, .. }) => assert_eq!(status, "killed by SIGKILL"),
        other => panic!("expected the child's death, got {other:?}"),
    }
}

#[process]
fn reply_through(requests: Reader<Writer<String>>) -> Result<(), ChannelError> {
    for reply in &requests {
        reply.write(format!("pid {}", std::process::id()))?;
    }
    Ok(())
}

/// Sends `count` reply ends to a child, each inside a message, and checks each answer came
/// from the child; with `after_child_waits`, each only once the child's read waits.
fn replies_through_a_child(count: usize, after_child_waits: bool) {
    let requests = Channel::<Writer<String>>::named("requests");
    let sender = requests.writer();
    let child = reply_through(requests.reader()).os().unwrap().spawn();
    for _ in 0..count {
        if after_child_waits {
            until_a_reader_waits(&requests);
        }
        let reply = Channel::<String>::named("reply");
        sender.write(reply.writer()).unwrap();
        let answer = reply.reader().read().unwrap();
        assert!(answer.starts_with("pid "), "{answer}");
        assert_ne!(answer, format!("pid {}", std::process::id()));
    }
    drop(sender);
    child.join_timeout(LIMIT).unwrap().unwrap();
}

#[test]
fn mobile_ends_sent_inside_messages_work_across_processes() {
    replies_through_a_child(3, false);
}

/// The same, with each end written only once the child waits to read it: the writer's
/// thread then encodes the end and sends it on itself (the hand-on), lending the end from
/// its own thread; the child must still get a working end every time.
#[test]
fn mobile_ends_handed_on_by_the_writer_work_across_processes() {
    replies_through_a_child(5, true);
}

#[process]
fn pass_on(input: Reader<u64>) -> Result<Vec<u64>, RunError> {
    // A child hands its end of the parent's channel to a grandchild.
    let (got, _) = consume(input).os()?.run()?;
    Ok(got)
}

#[test]
fn a_child_can_pass_an_end_on_to_a_grandchild() {
    let channel = Channel::<u64>::new();
    let writer = channel.writer();
    let child = pass_on(channel.reader()).os().unwrap().spawn();
    for n in [4, 5, 6] {
        writer.write(n).unwrap();
    }
    drop(writer);
    assert_eq!(child.join_timeout(LIMIT).unwrap().unwrap(), [4, 5, 6]);
}

#[process]
fn merge(left: Reader<u64>, right: Reader<u64>) -> Result<Vec<(u8, u64)>, csp::Error> {
    let mut alt = Alternation::fair();
    let mut got = Vec::new();
    let mut open = [true, true];
    while open[0] || open[1] {
        let step = csp::select! {
            &mut alt;
            v = read(left), if open[0] => Some((0, v)),
            v = read(right), if open[1] => Some((1, v)),
        };
        match step {
            Ok(Some(item)) => got.push(item),
            Ok(None) => {}
            Err(csp::SelectError::Channel { guard, error }) if error.is_retired() => {
                open[guard] = false
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(got)
}

#[test]
fn a_child_chooses_over_channels_homed_in_the_parent() {
    let (left, right) = (
        Channel::<u64>::named("left"),
        Channel::<u64>::named("right"),
    );
    let (lw, rw) = (left.writer(), right.writer());
    let child = merge(left.reader(), right.reader()).os().unwrap().spawn();
    for n in 0..20 {
        lw.write(n).unwrap();
        rw.write(100 + n).unwrap();
    }
    drop((lw, rw));
    let got = child.join_timeout(LIMIT).unwrap().unwrap();
    let from_left: Vec<u64> = got
        .iter()
        .filter(|(g, _)| *g == 0)
        .map(|&(_, v)| v)
        .collect();
    let from_right: Vec<u64> = got
        .iter()
        .filter(|(g, _)| *g == 1)
        .map(|&(_, v)| v)
        .collect();
    assert_eq!(from_left, (0..20).collect::<Vec<_>>());
    assert_eq!(from_right, (100..120).collect::<Vec<_>>());
}

#[process]
fn mix_local_and_remote(remote: Reader<u64>) -> Result<Vec<(u8, u64)>, csp::Error> {
    // A channel that lives in this child, fed by a thread of this child.
    let local = Channel::<u64>::named("local");
    let writer = local.writer();
    let feeder = std::thread::spawn(move || (1000..1005).try_for_each(|n| writer.write(n)));
    let input = local.reader();
    let mut got = Vec::new();
    let mut open = [true, true];
    while open[0] || open[1] {
        match csp::select! {
            v = read(input), if open[0] => (0, v),
            v = read(remote), if open[1] => (1, v),
        } {
            Ok(item) => got.push(item),
            Err(csp::SelectError::Channel { guard, error }) if error.is_retired() => {
                open[guard] = false
            }
            Err(error) => return Err(error.into()),
        }
    }
    feeder
        .join()
        .expect("the feeder")
        .map_err(csp::Error::from)?;
    Ok(got)
}

#[test]
fn one_choice_over_a_local_and_a_remote_channel() {
    let remote = Channel::<u64>::named("remote");
    let writer = remote.writer();
    let child = mix_local_and_remote(remote.reader()).os().unwrap().spawn();
    for n in 0..5 {
        writer.write(n).unwrap();
    }
    drop(writer);
    let got = child.join_timeout(LIMIT).unwrap().unwrap();
    let mut local: Vec<u64> = got
        .iter()
        .filter(|(g, _)| *g == 0)
        .map(|&(_, v)| v)
        .collect();
    let mut far: Vec<u64> = got
        .iter()
        .filter(|(g, _)| *g == 1)
        .map(|&(_, v)| v)
        .collect();
    local.sort_unstable();
    far.sort_unstable();
    assert_eq!(local, [1000, 1001, 1002, 1003, 1004]);
    assert_eq!(far, [0, 1, 2, 3, 4]);
}

#[process]
fn offer_on_both(
    x: Writer<(u64, u64)>,
    y: Writer<(u64, u64)>,
    id: u64,
    count: u64,
) -> Result<Vec<u8>, csp::Error> {
    let mut lanes = Vec::new();
    for n in 0..count {
        lanes.push(csp::select! {
            write(x, (id, n)) => 0u8,
            write(y, (id, n)) => 1u8,
        }?);
    }
    Ok(lanes)
}

#[test]
fn alternations_on_both_ends_of_channels_in_different_os_processes() {
    let (x, y) = (
        Channel::<(u64, u64)>::named("x"),
        Channel::<(u64, u64)>::named("y"),
    );
    let (reader, writer) = parallel![
        merge_pairs(x.reader(), y.reader()).os().unwrap(),
        offer_on_both(x.writer(), y.writer(), 7, 60).os().unwrap(),
    ]
    .run_timeout(LIMIT)
    .unwrap();
    let lanes = writer.unwrap();
    let got = reader.unwrap();
    assert_eq!(got.len(), 60, "every offer taken exactly once");
    for (n, &(lane, (id, value))) in got.iter().enumerate() {
        assert_eq!((id, value), (7, n as u64), "in order, no duplicates");
        assert_eq!(
            lane, lanes[n],
            "message {n}: both sides agree on the channel"
        );
    }
}

/// (channel index, (writer id, sequence number)) for each message read.
type Lanes = Vec<(u8, (u64, u64))>;

#[process]
fn merge_pairs(x: Reader<(u64, u64)>, y: Reader<(u64, u64)>) -> Result<Lanes, csp::Error> {
    let mut got = Vec::new();
    let mut open = [true, true];
    while open[0] || open[1] {
        match csp::select! {
            v = read(x), if open[0] => (0u8, v),
            v = read(y), if open[1] => (1u8, v),
        } {
            Ok(item) => got.push(item),
            Err(csp::SelectError::Channel { guard, error }) if error.is_retired() => {
                open[guard] = false
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(got)
}

#[process]
fn offer_or_give_up(out: Writer<String>) -> Result<(bool, String), csp::Error> {
    let mut guard = OutputGuard::new(&out, "kept".to_string());
    let mut quiet = TimeoutGuard::new(Duration::from_millis(50));
    let chosen = Alternation::priority().select(&mut [&mut guard as &mut dyn Guard, &mut quiet])?;
    Ok((chosen == 0, guard.take().unwrap_or_default()))
}

#[test]
fn a_remote_output_guard_that_times_out_keeps_its_value() {
    let channel = Channel::<String>::named("nobody reads");
    let _reader = channel.reader();
    let (written, kept) = offer_or_give_up(channel.writer())
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap()
        .unwrap();
    assert!(!written);
    assert_eq!(kept, "kept");
    assert!(channel.is_empty());
}

#[process]
fn choose_over_poison(a: Reader<u64>, b: Reader<u64>) -> Result<u64, csp::SelectError> {
    csp::select! { v = read(a) => v, v = read(b) => v }
}

#[test]
fn a_poisoned_remote_guard_is_reported_by_index() {
    let (a, b) = (Channel::<u64>::named("a"), Channel::<u64>::named("b"));
    let _writers = (a.writer(), b.writer());
    let child = choose_over_poison(a.reader(), b.reader())
        .os()
        .unwrap()
        .spawn();
    std::thread::sleep(Duration::from_millis(30)); // let it block, if it gets there first
    b.writer().poison();
    match child.join_timeout(LIMIT).unwrap() {
        Err(csp::SelectError::Channel { guard: 1, error }) => assert!(error.is_poisoned()),
        other => panic!("expected guard 1 poisoned, got {other:?}"),
    }
}

#[test]
fn timeouts_work_on_remote_ends() {
    let channel = Channel::<u64>::new();
    let _writer = channel.writer();
    let result = timed_read(channel.reader())
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap();
    assert_eq!(result, "timed out");
}

#[process]
fn timed_read(input: Reader<u64>) -> String {
    match input.read_timeout(Duration::from_millis(50)) {
        Err(csp::ReadTimeoutError::Timeout { .. }) => "timed out".into(),
        other => format!("{other:?}"),
    }
}

#[process]
fn hang_forever(report: Writer<u32>) -> u8 {
    let _ = report.write(std::process::id());
    std::thread::sleep(Duration::from_secs(120));
    0
}

#[process]
fn place_a_hanging_grandchild(report: Writer<u32>) -> Result<u8, RunError> {
    let _ = report.write(std::process::id());
    hang_forever(report).os()?.run()
}

#[test]
fn a_grandchild_dies_with_its_parent() {
    let pids = Channel::<u32>::named("pids");
    let reader = pids.reader();
    let running = place_a_hanging_grandchild(pids.writer())
        .os()
        .unwrap()
        .spawn();
    let child = reader.read_timeout(LIMIT).expect("the child reports");
    let grandchild = reader.read_timeout(LIMIT).expect("the grandchild reports");
    assert_ne!(child, grandchild);
    kill_9(child);
    // The grandchild gets SIGKILL when its parent dies; poll (bounded) until it is gone.
    let killed = Instant::now();
    while std::path::Path::new(&format!("/proc/{grandchild}")).exists()
        && !std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
    {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the grandchild outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    match running.join_timeout(LIMIT) {
        Err(RunError::ChildDied { status, .. }) => assert_eq!(status, "killed by SIGKILL"),
        other => panic!("expected the child's death, got {other:?}"),
    }
}

#[process]
fn stream_with_acks(
    out: Writer<u64>,
    acks: Writer<u64>,
    report: Writer<u32>,
) -> Result<(), csp::Error> {
    report.write(std::process::id())?;
    for n in 0.. {
        out.write(n)?;
        acks.write(n)?; // n was delivered: its write returned
    }
    Ok(())
}

#[test]
fn killing_a_child_mid_stream_loses_no_acknowledged_message() {
    for round in 0..5 {
        let (data, acks, pids) = (
            Channel::<u64>::named("data"),
            Channel::<u64>::buffered(1 << 16),
            Channel::<u32>::new(),
        );
        let (data_in, acks_in) = (data.reader(), acks.reader());
        let child = stream_with_acks(data.writer(), acks.writer(), pids.writer())
            .os()
            .unwrap();
        let running = start(move || child.run());
        let pid = pids
            .reader()
            .read_timeout(LIMIT)
            .expect("the child reports");
        let mut received = Vec::new();
        for _ in 0..(50 + 37 * round) {
            received.push(data_in.read_timeout(LIMIT).expect("streaming"));
        }
        kill_9(pid);
        // Whatever is still in flight either arrives or the channel reports the death.
        while let Ok(n) = data_in.read_timeout(LIMIT) {
            received.push(n);
        }
        assert_eq!(
            received,
            (0..received.len() as u64).collect::<Vec<_>>(),
            "round {round}: no gap, no duplicate"
        );
        let acknowledged: Vec<u64> = acks_in.iter().collect();
        assert!(
            acknowledged.len() <= received.len(),
            "round {round}: {} acknowledged but {} received",
            acknowledged.len(),
            received.len()
        );
        assert_eq!(
            acknowledged,
            received[..acknowledged.len()],
            "round {round}"
        );
        assert!(matches!(
            join("the composition", running),
            Err(RunError::ChildDied { .. })
        ));
    }
}

#[process]
fn make_and_send(out: Writer<Reader<u64>>, done: Reader<()>) -> Result<(), csp::Error> {
    let own = Channel::<u64>::buffered(4);
    out.write(own.reader())?; // the only end lent: this child's node must not move meanwhile
    let writer = own.writer();
    for n in 0..3 {
        writer.write(n)?;
    }
    done.read()?; // keep the channel's home alive until the parent has read
    Ok(())
}

#[test]
fn an_end_made_in_a_child_works_in_the_parent() {
    let (conduit, done) = (
        Channel::<Reader<u64>>::named("conduit"),
        Channel::<()>::new(),
    );
    let (received, finish) = (conduit.reader(), done.writer());
    let child = make_and_send(conduit.writer(), done.reader())
        .os()
        .unwrap()
        .spawn();
    let remote = received.read_timeout(LIMIT).unwrap();
    let got: Vec<u64> = (0..3)
        .map(|_| remote.read_timeout(LIMIT).unwrap())
        .collect();
    assert_eq!(got, [0, 1, 2]);
    finish.write(()).unwrap();
    child.join_timeout(LIMIT).unwrap().unwrap();
}

#[process]
fn send_fresh_channels(
    conduit: Writer<Vec<Reader<u64>>>,
    rounds: u64,
    done: Reader<()>,
) -> Result<(), csp::Error> {
    for round in 0..rounds {
        let channel = Channel::<u64>::buffered(1);
        channel.writer().write(round)?;
        conduit.write(vec![channel.reader(), channel.reader()])?;
    }
    done.read()?; // the channels live here: stay until the parent has read them all
    Ok(())
}

#[test]
fn ends_attached_over_a_new_session_survive_the_old_session_closing() {
    // Each round the parent drops its last end homed in the child, closing its session there,
    // and then attaches new ends over a new session; the old session's closing must not poison
    // them.
    let (conduit, done) = (
        Channel::<Vec<Reader<u64>>>::named("conduit"),
        Channel::<()>::new(),
    );
    let (received, finish) = (conduit.reader(), done.writer());
    let rounds = 500;
    let child = send_fresh_channels(conduit.writer(), rounds, done.reader())
        .os()
        .unwrap()
        .spawn();
    for round in 0..rounds {
        let readers = received.read_timeout(LIMIT).unwrap();
        let value = readers[0].read_timeout(LIMIT);
        assert_eq!(value, Ok(round), "round {round}");
    }
    finish.write(()).unwrap();
    child.join_timeout(LIMIT).unwrap().unwrap();
}

#[process]
fn pass_on_then_die_slowly(
    input: Reader<u64>,
    report: Writer<u32>,
) -> Result<Vec<u64>, csp::Error> {
    let placed = consume(input).os()?; // lends a ticket at the home on this process's behalf
    report.write(std::process::id())?;
    std::thread::sleep(Duration::from_secs(30)); // killed here, before the grandchild starts
    Ok(placed.run()?.0)
}

#[test]
fn an_end_in_transit_when_its_holder_dies_is_poisoned_not_leaked() {
    let (channel, pids) = (Channel::<u64>::named("in transit"), Channel::<u32>::new());
    let writer = channel.writer();
    let child = pass_on_then_die_slowly(channel.reader(), pids.writer())
        .os()
        .unwrap()
        .spawn();
    let pid = pids.reader().read_timeout(LIMIT).unwrap();
    kill_9(pid);
    match writer.write_timeout(1, LIMIT) {
        Err(csp::WriteTimeoutError::Channel(error)) => assert!(error.error.is_poisoned()),
        other => panic!(
            "the reader end in transit leaked: {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
    assert!(matches!(
        child.join_timeout(LIMIT),
        Err(RunError::ChildDied { .. })
    ));
}

#[process]
fn read_one_then_let_go(input: Reader<u64>, hold: Reader<()>) -> Result<u64, csp::Error> {
    let first = input.read()?;
    drop(input); // the only reader: the channel's reading side retires
    hold.read()?; // while this OS process lives on
    Ok(first)
}

#[test]
fn a_reader_in_a_child_that_lets_go_retires_the_channel_while_the_child_lives() {
    let (numbers, hold) = (Channel::<u64>::named("numbers"), Channel::<()>::new());
    let writer = numbers.writer();
    let child = read_one_then_let_go(numbers.reader(), hold.reader())
        .os()
        .unwrap()
        .spawn();
    drop(numbers);
    writer.write(1).unwrap();
    let refused = start(move || writer.write(2));
    let error = join("a write to a channel whose reader let go", refused).unwrap_err();
    assert!(error.error.is_retired(), "{}", error.error);
    hold.writer().write(()).unwrap();
    assert_eq!(child.join_timeout(LIMIT).unwrap().unwrap(), 1);
}

#[process]
fn echo_numbers(input: Reader<u64>, output: Writer<u64>) -> Result<(), csp::Error> {
    loop {
        output.write(input.read()? * 2)?;
    }
}

/// Round trips with a child over rendezvous channels homed here, the parent waiting in
/// each: the waiting parent carries out some of the child's requests itself (see
/// `mirror` in csp-core), and not one answer is lost, duplicated or out of order.
#[test]
fn round_trips_served_by_the_waiting_parent_lose_nothing() {
    const ROUNDS: u64 = 3000;
    let (to_child, from_child) = (Channel::named("to child"), Channel::named("from child"));
    let (writer, reader) = (to_child.writer(), from_child.reader());
    let child = echo_numbers(to_child.reader(), from_child.writer())
        .os()
        .unwrap()
        .spawn();
    drop((to_child, from_child));
    let served_before = csp::__private::requests_served_by_waiting_threads();
    let answers = start(move || {
        let answers: Vec<u64> = (0..ROUNDS)
            .map(|n| {
                writer.write(n).unwrap();
                reader.read().unwrap()
            })
            .collect();
        drop((writer, reader));
        answers
    });
    let answers = join("the round trips", answers);
    assert_eq!(answers, (0..ROUNDS).map(|n| n * 2).collect::<Vec<_>>());
    let served = csp::__private::requests_served_by_waiting_threads() - served_before;
    assert!(
        served > 0,
        "no request of the child was carried out by the waiting parent"
    );
    let ended = child.join_timeout(LIMIT);
    assert!(
        matches!(ended, Ok(Err(ref error)) if error.to_string().contains("retired")),
        "the child ends when its channels retire: {ended:?}"
    );
}

#[process]
fn write_then_hang(output: Writer<u64>, count: u64) -> u64 {
    if output.write(u64::from(std::process::id())).is_err() {
        return 0;
    }
    for n in 0..count {
        if output.write(n).is_err() {
            return n;
        }
    }
    std::thread::sleep(Duration::from_secs(60));
    count
}

/// A child killed while threads here keep looking for their counterparts (a local
/// ping-pong), after the waiting reader here served the child's writes itself, is still
/// noticed at once: the child's ends are poisoned promptly.
#[test]
fn a_child_killed_while_threads_here_keep_looking_is_noticed_promptly() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    const WRITES: u64 = 200;
    // Two threads that keep waiting for each other: some thread here always looks.
    let stop = Arc::new(AtomicBool::new(false));
    let (ping, pong) = (Channel::<u64>::new(), Channel::<u64>::new());
    let spinners: Vec<_> = [
        (ping.writer(), pong.reader()),
        (pong.writer(), ping.reader()),
    ]
    .into_iter()
    .enumerate()
    .map(|(side, (out, input))| {
        let stop = Arc::clone(&stop);
        start(move || {
            if side == 0 {
                let _ = out.write(0);
            }
            while !stop.load(Ordering::Acquire) {
                let Ok(n) = input.read_timeout(LIMIT) else {
                    break;
                };
                if out.write(n + 1).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop((ping, pong));
    let numbers = Channel::<u64>::named("numbers");
    let reader = numbers.reader();
    let child = write_then_hang(numbers.writer(), WRITES).os().unwrap();
    drop(numbers);
    let running = start(move || child.run());
    let pid = reader
        .read_timeout(LIMIT)
        .expect("the child reports its pid");
    for n in 0..WRITES {
        assert_eq!(reader.read_timeout(LIMIT).ok(), Some(n));
    }
    let blocked = start(move || reader.read());
    still_blocked(
        "a read of a child that hangs",
        &blocked,
        Duration::from_millis(100),
    );
    let killed = Instant::now();
    kill_9(pid);
    let error = join("the blocked read", blocked).unwrap_err();
    let noticed = killed.elapsed();
    stop.store(true, Ordering::Release);
    assert!(error.is_poisoned(), "{error}");
    assert!(
        noticed < Duration::from_secs(1),
        "poisoned after {noticed:?}"
    );
    assert!(matches!(
        join("the composition", running),
        Err(RunError::ChildDied { .. })
    ));
    for spinner in spinners {
        join("a spinner", spinner);
    }
}

/// Echoes byte strings until its input retires.
#[process]
fn echo_byte_strings(
    vectors: Reader<Vec<u8>>,
    vectors_back: Writer<Vec<u8>>,
    buffers: Reader<serde_bytes::ByteBuf>,
    buffers_back: Writer<serde_bytes::ByteBuf>,
) -> Result<usize, csp::Error> {
    let mut echoed = 0;
    loop {
        match vectors.read() {
            Ok(vector) => vectors_back.write(vector)?,
            Err(ChannelError::Retired { .. }) => return Ok(echoed),
            Err(error) => return Err(error.into()),
        }
        buffers_back.write(buffers.read()?)?;
        echoed += 1;
    }
}

/// Writes byte strings of `sizes`, one after the other, as fast as it can; returns how many
/// of its writes went ahead.
#[process]
fn stream_byte_strings(out: Writer<Vec<u8>>, sizes: Vec<usize>) -> Result<u64, csp::Error> {
    for (seed, size) in sizes.into_iter().enumerate() {
        out.write(sized(size, seed))?;
    }
    drop(out);
    Ok(csp::__private::writes_sent_ahead())
}

/// A rendezvous channel (`capacity` 0) or a buffered one.
fn sized_channel<T>(name: &str, capacity: usize) -> Channel<T> {
    if capacity == 0 {
        Channel::named(name)
    } else {
        Channel::named_buffered(name, capacity)
    }
}

/// A byte string of `size` bytes that says which one it is.
fn sized(size: usize, seed: usize) -> Vec<u8> {
    (0..size).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

/// Values of every size cross to a child and back whole, in order, as `Vec<u8>` and as
/// `ByteBuf`, over rendezvous and buffered channels: small ones, ones that start on a
/// cache line of the ring, ones too large to be read in place, and runs of them that
/// fill the ring and wrap it.
#[test]
fn byte_strings_of_every_size_cross_whole_both_ways() {
    let mut sizes = vec![0, 1, 7, 127, 128, 2047, 2048, 5000, 65_536, 65_537];
    sizes.extend([130_000, 131_072, 300_000, 1 << 20]);
    sizes.extend((0..40).map(|i| 1000 + i * 3331));
    for capacity in [0, 8] {
        let (vectors, vectors_back) = (
            sized_channel::<Vec<u8>>("vectors", capacity),
            sized_channel("vectors back", capacity),
        );
        let (buffers, buffers_back) = (
            sized_channel::<serde_bytes::ByteBuf>("buffers", capacity),
            sized_channel("buffers back", capacity),
        );
        let child = echo_byte_strings(
            vectors.reader(),
            vectors_back.writer(),
            buffers.reader(),
            buffers_back.writer(),
        )
        .os()
        .unwrap()
        .spawn();
        let (to_child, from_child) = (vectors.writer(), vectors_back.reader());
        let (bytes_to_child, bytes_from_child) = (buffers.writer(), buffers_back.reader());
        drop((vectors, vectors_back, buffers, buffers_back));
        let sent = sizes.clone();
        let round_trips = start(move || {
            for (seed, &size) in sent.iter().enumerate() {
                to_child.write(sized(size, seed)).unwrap();
                let back = from_child.read().unwrap();
                assert!(
                    back == sized(size, seed),
                    "Vec<u8> of {size} bytes came back"
                );
                bytes_to_child
                    .write(serde_bytes::ByteBuf::from(sized(size, seed + 1)))
                    .unwrap();
                let back = bytes_from_child.read().unwrap();
                assert!(
                    back.as_slice() == sized(size, seed + 1).as_slice(),
                    "ByteBuf of {size} bytes came back"
                );
            }
            sent.len()
        });
        let sent = join("the byte strings", round_trips);
        let echoed = child.join_timeout(LIMIT);
        assert!(
            matches!(echoed, Ok(Ok(count)) if count == sent),
            "capacity {capacity}: {echoed:?}"
        );
    }
}

/// A stream of byte strings of every size written ahead by a child into a buffered channel
/// here (the ring fills, wraps, and values outgrow the room left in it) arrives whole and
/// in order.
#[test]
fn a_stream_of_byte_strings_written_ahead_arrives_whole_in_order() {
    let mut sizes: Vec<usize> = (0..300).map(|i| (i * 7919) % 150_000).collect();
    sizes.extend([1 << 20, 8, 65_536, 65_536, 65_536, 65_536, 65_536, 3]);
    let channel = Channel::named_buffered("stream", 64);
    let reader = channel.reader();
    let child = stream_byte_strings(channel.writer(), sizes.clone())
        .os()
        .unwrap()
        .spawn();
    drop(channel);
    let expected = sizes.clone();
    let reading = start(move || {
        for (seed, &size) in expected.iter().enumerate() {
            let value = reader.read().unwrap();
            assert!(value == sized(size, seed), "value {seed} of {size} bytes");
        }
        reader.read().is_err()
    });
    assert!(
        join("the stream", reading),
        "the stream ends when the child's end retires"
    );
    let ahead = child.join_timeout(LIMIT);
    assert!(
        matches!(ahead, Ok(Ok(ahead)) if ahead > 100),
        "most of the writes went ahead: {ahead:?}"
    );
}

/// A value whose encoding reads a channel: something csp cannot do in the middle of sending
/// a value to another OS process.
struct ReadsWhileEncoded(Reader<u64>);

impl serde::Serialize for ReadsWhileEncoded {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let n = self.0.read().map_err(serde::ser::Error::custom)?;
        serializer.serialize_u64(n)
    }
}

impl<'de> serde::Deserialize<'de> for ReadsWhileEncoded {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("never received"))
    }
}

#[process]
fn send_what_reads_while_encoded(
    out: Writer<ReadsWhileEncoded>,
    numbers: Reader<u64>,
) -> Result<(), csp::Error> {
    out.write(ReadsWhileEncoded(numbers))?;
    Ok(())
}

/// A channel operation made from inside the encoding of a value on its way to another OS
/// process is refused with a panic that says so, reported as the child's.
#[test]
fn a_channel_operation_nested_in_an_encoding_is_refused_clearly() {
    let (out, numbers) = (Channel::named("out"), Channel::<u64>::named("numbers"));
    let keep = (out.reader(), numbers.writer());
    let child = send_what_reads_while_encoded(out.writer(), numbers.reader())
        .os()
        .unwrap()
        .spawn();
    drop((out, numbers));
    match child.join_timeout(LIMIT) {
        Err(RunError::Panicked { message, .. }) => {
            assert!(
                message.contains("cannot be nested in an encoding"),
                "{message}"
            );
        }
        other => panic!("expected the child's panic, got {other:?}"),
    }
    drop(keep);
}
