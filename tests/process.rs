//! Processes and compositions: `#[process]`, nothing runs until composed, poison and retire
//! propagation (through containers, with opt-out), panics, nesting, `Spawn`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::LIMIT;
use csp::prelude::*;
use csp::{ChannelError, Ending, RunError};

#[process]
fn count_to(out: Writer<u32>, n: u32) -> Result<(), csp::Error> {
    for i in 1..=n {
        out.write(i)?;
    }
    Ok(())
}

#[process]
fn add_one(input: Reader<u32>, out: Writer<u32>) -> Result<(), csp::Error> {
    loop {
        out.write(input.read()? + 1)?;
    }
}

#[process]
fn collect(input: Reader<u32>) -> Vec<u32> {
    input.iter().collect()
}

#[process]
fn bump(counter: Arc<AtomicUsize>) {
    counter.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn nothing_runs_until_composed() {
    let counter = Arc::new(AtomicUsize::new(0));
    let process = bump(Arc::clone(&counter));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        counter.load(Ordering::SeqCst),
        0,
        "constructing a process ran it"
    );
    process.run_timeout(LIMIT).unwrap();
    assert_eq!(counter.load(Ordering::SeqCst), 1);
}

#[test]
fn processes_are_named_after_module_and_function() {
    let process = collect(Channel::new().reader());
    assert_eq!(process.name(), "process::collect");
}

#[test]
fn retire_flows_through_a_pipeline() {
    let (a, b) = (Channel::new(), Channel::new());
    let (counted, relayed, got) = parallel![
        count_to(a.writer(), 5),
        add_one(a.reader(), b.writer()),
        collect(b.reader()),
    ]
    .run_timeout(LIMIT)
    .unwrap();
    assert!(counted.is_ok());
    // The relay ended because its input retired: a normal ending, reported as such.
    let relay_error = relayed.unwrap_err();
    assert!(relay_error.channel_error().unwrap().is_retired());
    assert_eq!(got, [2, 3, 4, 5, 6]);
}

#[process]
fn poison_after(out: Writer<u32>, n: u32) -> Result<(), csp::Error> {
    for i in 0..n {
        out.write(i)?;
    }
    out.poison();
    Ok(())
}

#[process]
fn fan_out(input: Reader<u32>, outputs: Vec<Writer<u32>>) -> Result<(), ChannelError> {
    loop {
        let value = input.read()?;
        for output in &outputs {
            output.write(value)?;
        }
    }
}

#[test]
fn poison_propagates_through_ends_inside_a_vec() {
    let input = Channel::new();
    let outs: Vec<Channel<u32>> = (0..3).map(|_| Channel::new()).collect();
    let collectors = Parallel::of(outs.iter().map(|c| collect(c.reader())));
    let (_, fanned, collected) = parallel![
        poison_after(input.writer(), 2),
        fan_out(input.reader(), outs.iter().map(Channel::writer).collect()),
        collectors,
    ]
    .run_timeout(LIMIT)
    .unwrap();
    assert!(fanned.unwrap_err().is_poisoned());
    assert_eq!(collected, vec![vec![0, 1]; 3]);
    for channel in &outs {
        assert!(
            channel.reader().read().unwrap_err().is_poisoned(),
            "{channel:?}"
        );
    }
}

#[process]
fn hold_everything(
    input: Reader<u8>,
    tuple: (u8, Writer<u8>),
    maybe: Option<Writer<u8>>,
    map: HashMap<String, Writer<u8>>,
    tree: BTreeMap<u8, Vec<Writer<u8>>>,
    array: [Writer<u8>; 2],
) -> Result<(), ChannelError> {
    let _keep = (tuple, maybe, map, tree, array);
    input.read().map(drop)
}

#[test]
fn poison_reaches_ends_in_tuples_options_maps_and_arrays() {
    let input = Channel::<u8>::named("input");
    let channels: Vec<Channel<u8>> = (0..6).map(|i| Channel::named(format!("c{i}"))).collect();
    let w = |i: usize| channels[i].writer();
    let process = hold_everything(
        input.reader(),
        (1, w(0)),
        Some(w(1)),
        HashMap::from([("k".to_string(), w(2))]),
        BTreeMap::from([(0, vec![w(3)])]),
        [w(4), w(5)],
    );
    input.writer().poison();
    let ended = process.run_timeout(LIMIT).unwrap();
    assert!(ended.unwrap_err().is_poisoned());
    for channel in &channels {
        assert!(
            channel.reader().try_read().is_err_and(|e| {
                matches!(e, csp::TryReadError::Channel(ChannelError::Poisoned { .. }))
            }),
            "{} was not poisoned",
            channel.name()
        );
    }
}

#[process(propagate = false)]
fn stubborn(input: Reader<u8>, out: Writer<u8>) -> Result<(), ChannelError> {
    let _keep = &out;
    input.read().map(drop)
}

#[test]
fn a_process_can_opt_out_of_propagation() {
    let (input, output) = (Channel::<u8>::new(), Channel::<u8>::buffered(1));
    input.writer().poison();
    let result = stubborn(input.reader(), output.writer())
        .run_timeout(LIMIT)
        .unwrap();
    assert!(result.unwrap_err().is_poisoned());
    output
        .writer()
        .write(1)
        .expect("the opted-out process left its output alone");
}

#[process]
fn explode(input: Reader<u32>, out: Writer<u32>) {
    let _keep = (&input, &out);
    panic!("boom at stage 2");
}

#[test]
fn a_panic_poisons_the_processs_ends_and_is_reported_by_name() {
    let (a, b) = (Channel::new(), Channel::new());
    let result = parallel![
        count_to(a.writer(), 1_000_000),
        explode(a.reader(), b.writer()),
        collect(b.reader()),
    ]
    .run_timeout(LIMIT);
    match result {
        Err(RunError::Panicked { process, message }) => {
            assert_eq!(process, "process::explode");
            assert_eq!(message, "boom at stage 2");
        }
        other => panic!(
            "expected the panic to be reported, got {:?}",
            other.map(|_| ())
        ),
    }
    assert!(a.reader().read().unwrap_err().is_poisoned());
    assert!(b.reader().read().unwrap_err().is_poisoned());
}

#[test]
fn a_panic_in_a_nested_composition_names_the_process_not_the_composition() {
    let (a, b) = (Channel::new(), Channel::new());
    let inner = Sequence::tuple((
        Process::new("setup", || ()),
        explode(a.reader(), b.writer()),
    ));
    let outer = parallel![inner, collect(b.reader()), count_to(a.writer(), 3)];
    match outer.run_timeout(LIMIT) {
        Err(RunError::Panicked { process, .. }) => assert_eq!(process, "process::explode"),
        other => panic!("expected the nested panic, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn sequence_runs_in_order_and_stops_at_a_failure() {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let step = |name: &'static str| {
        let log = Arc::clone(&log);
        Process::new(name, move || log.lock().unwrap().push(name))
    };
    let (a, b) = (Channel::<u32>::new(), Channel::<u32>::new());
    let result = sequence![
        step("first"),
        step("second"),
        explode(a.reader(), b.writer()),
        step("never")
    ]
    .run_timeout(LIMIT);
    assert!(matches!(result, Err(RunError::Panicked { .. })));
    assert_eq!(*log.lock().unwrap(), ["first", "second"]);
}

#[test]
fn compositions_nest_and_return_results_in_order() {
    let leaf = |n: u32| {
        Process::new(format!("leaf{n}"), move || {
            std::thread::sleep(Duration::from_millis(u64::from(5 - n)));
            n
        })
    };
    let tree = parallel![
        sequence![leaf(1), parallel![leaf(2), leaf(3)]],
        Parallel::of([leaf(4), leaf(5)]),
        Sequence::of(Vec::<Process<u32>>::new()),
    ];
    let ((one, (two, three)), rest, empty) = tree.run_timeout(LIMIT).unwrap();
    assert_eq!((one, two, three), (1, 2, 3));
    assert_eq!(rest, [4, 5]);
    assert!(empty.is_empty());
}

#[test]
fn spawn_runs_in_the_background_and_joins_with_a_bound() {
    let channel = Channel::new();
    let handle = Spawn::start(collect(channel.reader()));
    assert_eq!(handle.name(), "process::collect");
    count_to(channel.writer(), 3)
        .run_timeout(LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!(handle.join_timeout(LIMIT).unwrap(), [1, 2, 3]);
}

#[test]
fn join_timeout_reports_a_process_that_does_not_finish() {
    let channel = Channel::<u32>::new();
    let handle = collect(channel.reader()).spawn();
    match handle.join_timeout(Duration::from_millis(50)) {
        Err(RunError::TimedOut { process, after }) => {
            assert_eq!(process, "process::collect");
            assert_eq!(after, Duration::from_millis(50));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    channel.writer().poison(); // let the detached process end
}

#[derive(ChannelEnds)]
struct Ports {
    input: Reader<u8>,
    outputs: Vec<Writer<u8>>,
    label: &'static str,
}

#[derive(ChannelEnds)]
enum Role {
    Source(Writer<u8>),
    Idle,
}

#[process]
fn with_ports(ports: Ports, role: Role) -> Result<(), ChannelError> {
    let _keep = (&ports.outputs, ports.label, &role);
    ports.input.read().map(drop)
}

#[test]
fn derived_channel_ends_are_found_in_user_types() {
    let (input, out, source) = (
        Channel::<u8>::new(),
        Channel::<u8>::new(),
        Channel::<u8>::new(),
    );
    let ports = Ports {
        input: input.reader(),
        outputs: vec![out.writer()],
        label: "p",
    };
    let process = with_ports(ports, Role::Source(source.writer()));
    input.writer().poison();
    assert!(
        process
            .run_timeout(LIMIT)
            .unwrap()
            .unwrap_err()
            .is_poisoned()
    );
    assert!(out.reader().read().unwrap_err().is_poisoned());
    assert!(source.reader().read().unwrap_err().is_poisoned());
    let _ = Role::Idle;
}

#[test]
fn closure_processes_can_name_their_ends_and_how_they_end() {
    let (input, out) = (Channel::<u8>::new(), Channel::<u8>::new());
    let (reader, writer) = (input.reader(), out.writer());
    let process = Process::new("closure", move || {
        let _keep = &writer;
        reader.read()
    })
    .with_ends(&(input.reader(), out.writer()))
    .with_ending(|result: &Result<u8, ChannelError>| Ending::of(result.as_ref().err()));
    input.writer().poison();
    assert!(process.run_timeout(LIMIT).unwrap().is_err());
    assert!(out.reader().read().unwrap_err().is_poisoned());
}

#[process]
fn boxed_error(
    input: Reader<u8>,
    out: Writer<u8>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _keep = &out;
    input.read()?;
    Ok(())
}

#[test]
fn boxed_errors_still_propagate_poison() {
    let (input, out) = (Channel::<u8>::new(), Channel::<u8>::new());
    input.writer().poison();
    boxed_error(input.reader(), out.writer())
        .run_timeout(LIMIT)
        .unwrap()
        .unwrap_err();
    assert!(out.reader().read().unwrap_err().is_poisoned());
}

#[test]
fn results_come_back_in_order_from_parallel_of() {
    let processes = (0..50u64).map(|i| {
        Process::new(format!("p{i}"), move || {
            std::thread::sleep(Duration::from_micros(50 * (50 - i)));
            i * i
        })
    });
    let squares = Parallel::of(processes).run_timeout(LIMIT).unwrap();
    assert_eq!(squares, (0..50).map(|i| i * i).collect::<Vec<_>>());
}

#[process]
fn source_forever(out: Writer<u32>) -> Result<(), ChannelError> {
    loop {
        out.write(1)?;
    }
}

#[process]
fn relay<T: Send + 'static>(input: Reader<T>, out: Writer<T>) -> Result<T, ChannelError> {
    loop {
        out.write(input.read()?)?;
    }
}

#[process]
fn take_then_poison(input: Reader<u32>, count: usize) -> usize {
    let got = input.iter().take(count).count();
    input.poison();
    got
}

#[test]
fn upstream_sees_poison_not_retire_when_a_process_ends_by_poison() {
    // A process's ends are dropped when it ends, which would retire them; the poison must be
    // passed on first, or upstream sees "retired" and may carry on. This raced before.
    for round in 0..200 {
        let (a, b) = (Channel::new(), Channel::new());
        let (source, relayed, taken) = parallel![
            source_forever(a.writer()),
            relay(a.reader(), b.writer()),
            take_then_poison(b.reader(), 3),
        ]
        .run_timeout(LIMIT)
        .unwrap();
        assert_eq!(taken, 3);
        assert!(relayed.unwrap_err().is_poisoned(), "round {round}: relay");
        let error = source.unwrap_err();
        assert!(
            error.is_poisoned(),
            "round {round}: the source saw {error}, not the poison"
        );
    }
}

#[test]
fn a_panicking_process_poisons_before_its_ends_retire() {
    for round in 0..100 {
        let (a, b) = (Channel::<u32>::new(), Channel::<u32>::new());
        let source = source_forever(a.writer()).spawn();
        let result = explode(a.reader(), b.writer()).run_timeout(LIMIT);
        assert!(
            matches!(result, Err(RunError::Panicked { .. })),
            "round {round}"
        );
        let seen = source.join_timeout(LIMIT).unwrap().unwrap_err();
        assert!(
            seen.is_poisoned(),
            "round {round}: the source saw {seen}, not the poison"
        );
    }
}
