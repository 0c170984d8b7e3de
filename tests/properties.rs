//! Property tests of the channel and alternation rules (proptest).

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{join, start};
use csp::prelude::*;
use csp::{SelectError, TryReadError, TryWriteError};
use proptest::prelude::*;

fn threaded_cases() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(threaded_cases())]

    /// (1) Any writers and readers on one channel: the multiset read equals the multiset
    /// written, and each writer's values arrive in its order.
    #[test]
    fn every_value_arrives_once_and_in_each_writers_order(
        batches in prop::collection::vec(prop::collection::vec(any::<i16>(), 0..40), 1..5),
        readers in 1usize..4,
        capacity in 0usize..4,
    ) {
        let channel = Channel::<(usize, usize, i16)>::buffered(capacity);
        // Every writer end exists before any writer runs: a writer with an empty batch that
        // finished before the next end was made would retire the writing side for good.
        let ends: Vec<_> = batches.iter().map(|_| channel.writer()).collect();
        let writers: Vec<_> = batches.iter().cloned().enumerate().zip(ends).map(|((w, batch), writer)| {
            start(move || {
                for (i, v) in batch.into_iter().enumerate() {
                    writer.write((w, i, v)).unwrap();
                }
            })
        }).collect();
        let readers: Vec<_> = (0..readers).map(|_| {
            let reader = channel.reader();
            start(move || reader.iter().collect::<Vec<_>>())
        }).collect();
        writers.into_iter().for_each(|writer| join("writer", writer));
        let mut got = Vec::new();
        for reader in readers {
            let seen = join("reader", reader);
            let mut last: HashMap<usize, usize> = HashMap::new();
            for &(w, i, _) in &seen {
                prop_assert!(last.get(&w).is_none_or(|&before| i > before), "writer {} out of order", w);
                last.insert(w, i);
            }
            got.extend(seen);
        }
        got.sort_unstable();
        let mut written: Vec<_> = batches.iter().enumerate()
            .flat_map(|(w, b)| b.iter().enumerate().map(move |(i, &v)| (w, i, v))).collect();
        written.sort_unstable();
        prop_assert_eq!(got, written);
    }

    /// (2a) A buffered channel never holds more than its capacity, even with writers racing.
    #[test]
    fn a_buffer_never_exceeds_its_capacity_under_load(capacity in 1usize..6, writers in 1usize..4) {
        let channel = Channel::<u32>::buffered(capacity);
        let done = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..writers).map(|_| {
            let writer = channel.writer();
            start(move || (0..300).for_each(|n| writer.write(n).unwrap()))
        }).collect();
        let monitor = {
            let (channel, done) = (channel.clone(), Arc::clone(&done));
            start(move || {
                let mut most = 0;
                while !done.load(Ordering::SeqCst) {
                    most = most.max(channel.len());
                }
                most
            })
        };
        let reader = channel.reader();
        let reading = start(move || reader.iter().count());
        writers.into_iter().for_each(|writer| join("writer", writer));
        done.store(true, Ordering::SeqCst);
        prop_assert!(join("monitor", monitor) <= capacity);
        prop_assert!(join("reader", reading) > 0);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Write(u8),
    Read,
}

proptest! {
    /// (2b) Non-blocking operations on a buffered channel behave exactly like a bounded queue.
    #[test]
    fn a_buffer_behaves_like_a_bounded_queue(
        capacity in 0usize..5,
        ops in prop::collection::vec(prop_oneof![any::<u8>().prop_map(Op::Write), Just(Op::Read)], 0..60),
    ) {
        let channel = Channel::<u8>::buffered(capacity);
        let (writer, reader) = (channel.writer(), channel.reader());
        let mut model = VecDeque::new();
        for op in ops {
            match op {
                Op::Write(v) => {
                    let fits = model.len() < capacity;
                    match writer.try_write(v) {
                        Ok(()) => { prop_assert!(fits); model.push_back(v); }
                        Err(TryWriteError::Full { value, .. }) => { prop_assert!(!fits); prop_assert_eq!(value, v); }
                        Err(other) => prop_assert!(false, "{}", other),
                    }
                }
                Op::Read => match reader.try_read() {
                    Ok(v) => prop_assert_eq!(Some(v), model.pop_front()),
                    Err(TryReadError::Empty { .. }) => prop_assert!(model.is_empty()),
                    Err(other) => prop_assert!(false, "{}", other),
                },
            }
            prop_assert!(channel.len() <= capacity);
            prop_assert_eq!(channel.len(), model.len());
        }
    }
}

#[derive(Debug, Clone)]
enum GuardSpec {
    /// Read from channel `k`; `ready` puts a value there first.
    Input {
        ready: bool,
    },
    /// Write to channel `k`; `ready` leaves room in its buffer.
    Output {
        ready: bool,
    },
    Skip,
}

fn guard_spec() -> impl Strategy<Value = (GuardSpec, bool)> {
    let kind = prop_oneof![
        any::<bool>().prop_map(|ready| GuardSpec::Input { ready }),
        any::<bool>().prop_map(|ready| GuardSpec::Output { ready }),
        Just(GuardSpec::Skip),
    ];
    (kind, any::<bool>())
}

proptest! {
    /// (3) A choice over random guards fires exactly one guard, never a disabled one, carries
    /// out exactly that communication, and (priority) picks the first ready enabled guard.
    #[test]
    fn a_choice_fires_exactly_one_enabled_guard(specs in prop::collection::vec(guard_spec(), 1..7)) {
        // One buffered channel of capacity 1 per guard: readiness is set up before the choice.
        let channels: Vec<Channel<usize>> = specs.iter().map(|_| Channel::buffered(1)).collect();
        let writers: Vec<_> = channels.iter().map(Channel::writer).collect();
        let readers: Vec<_> = channels.iter().map(Channel::reader).collect();
        for (k, (spec, _)) in specs.iter().enumerate() {
            match spec {
                GuardSpec::Input { ready: true } | GuardSpec::Output { ready: false } => writers[k].write(1000 + k).unwrap(),
                _ => {}
            }
        }
        let before: Vec<usize> = channels.iter().map(Channel::len).collect();
        let mut inputs: Vec<Option<InputGuard<'_, usize>>> = Vec::new();
        let mut outputs: Vec<Option<OutputGuard<'_, usize>>> = Vec::new();
        let mut skips: Vec<Option<SkipGuard>> = Vec::new();
        for (k, (spec, enabled)) in specs.iter().enumerate() {
            inputs.push(matches!(spec, GuardSpec::Input { .. }).then(|| InputGuard::new(&readers[k]).when(*enabled)));
            outputs.push(matches!(spec, GuardSpec::Output { .. }).then(|| OutputGuard::new(&writers[k], k).when(*enabled)));
            skips.push(matches!(spec, GuardSpec::Skip).then(|| SkipGuard::new().when(*enabled)));
        }
        let mut quick = TimeoutGuard::new(Duration::from_millis(1));
        let expected = specs.iter().position(|(spec, enabled)| *enabled && match spec {
            GuardSpec::Input { ready } | GuardSpec::Output { ready } => *ready,
            GuardSpec::Skip => true,
        });
        let result = {
            let mut guards: Vec<&mut dyn Guard> = Vec::new();
            for ((input, output), skip) in inputs.iter_mut().zip(outputs.iter_mut()).zip(skips.iter_mut()) {
                if let Some(g) = input.as_mut() { guards.push(g); }
                if let Some(g) = output.as_mut() { guards.push(g); }
                if let Some(g) = skip.as_mut() { guards.push(g); }
            }
            guards.push(&mut quick);
            Alternation::priority().select(&mut guards)
        };
        let chosen = result.expect("a timeout guard is always enabled");
        match expected {
            None => prop_assert_eq!(chosen, specs.len(), "only the timeout may fire"),
            Some(first) => prop_assert_eq!(chosen, first),
        }
        for (k, (spec, _)) in specs.iter().enumerate() {
            let after = channels[k].len();
            let fired = chosen == k;
            match spec {
                GuardSpec::Input { .. } => {
                    prop_assert_eq!(after, before[k] - usize::from(fired));
                    prop_assert_eq!(inputs[k].as_mut().unwrap().take(), fired.then_some(1000 + k));
                }
                GuardSpec::Output { .. } => {
                    prop_assert_eq!(after, before[k] + usize::from(fired));
                    let kept = outputs[k].as_mut().unwrap().take();
                    prop_assert_eq!(kept, (!fired).then_some(k));
                    if fired {
                        prop_assert_eq!(readers[k].try_read().ok(), Some(k));
                    }
                }
                GuardSpec::Skip => prop_assert_eq!(after, before[k]),
            }
        }
    }

    /// (3b) With every guard disabled, the choice says so instead of blocking.
    #[test]
    fn a_choice_with_every_guard_disabled_is_an_error(count in 1usize..5) {
        let channels: Vec<Channel<u8>> = (0..count).map(|_| Channel::new()).collect();
        let readers: Vec<_> = channels.iter().map(Channel::reader).collect();
        let mut guards: Vec<InputGuard<'_, u8>> = readers.iter().map(|r| InputGuard::new(r).when(false)).collect();
        let mut dynamic: Vec<&mut dyn Guard> = guards.iter_mut().map(|g| g as &mut dyn Guard).collect();
        prop_assert_eq!(Alternation::fair().select(&mut dynamic), Err(SelectError::NoEnabledGuard));
    }
}

proptest! {
    #![proptest_config(threaded_cases())]

    /// (4) Poison at a random point: every operation after it fails, and every operation that
    /// completed before it counts.
    #[test]
    fn poison_at_a_random_point(total in 1u32..60, poison_after in 0u32..60, by_reader in any::<bool>()) {
        let poison_after = poison_after.min(total);
        let channel = Channel::<u32>::new();
        let (writer, reader) = (channel.writer(), channel.reader());
        let writing = start(move || {
            let mut delivered = Vec::new();
            for n in 0..total {
                if !by_reader && n == poison_after {
                    writer.poison();
                }
                match writer.write(n) {
                    Ok(()) => delivered.push(n),
                    Err(error) => {
                        assert!(error.error.is_poisoned());
                        assert_eq!(error.value, n, "the value is handed back");
                        break;
                    }
                }
            }
            if !by_reader {
                writer.poison(); // the poison point may be after the last value
            }
            // After the poison, every later write fails.
            (delivered, writer.write(999).is_err())
        });
        let mut got = Vec::new();
        loop {
            if by_reader && got.len() as u32 == poison_after {
                reader.poison();
            }
            match reader.read() {
                Ok(n) => got.push(n),
                Err(error) => { prop_assert!(error.is_poisoned() || error.is_retired()); break; }
            }
        }
        let (delivered, later_failed) = join("writer", writing);
        prop_assert_eq!(&got, &delivered, "rendezvous: what was written is what was read");
        prop_assert_eq!(got, (0..poison_after).collect::<Vec<_>>());
        prop_assert!(later_failed);
        prop_assert!(reader.read().is_err());
    }

    /// (5) Retire: a side closes exactly when its last end retires, in any order of retiring.
    #[test]
    fn a_side_closes_exactly_when_its_last_end_retires(
        ends in 1usize..6,
        order in Just(()).prop_perturb(|_, mut rng| rng.next_u64()),
        reading_side in any::<bool>(),
    ) {
        let channel = Channel::<u8>::buffered(1);
        let mut rng_state = order;
        let mut next = move |bound: usize| { rng_state = rng_state.wrapping_mul(6364136223846793005).wrapping_add(1); (rng_state >> 33) as usize % bound };
        if reading_side {
            let writer = channel.writer();
            let mut readers: Vec<_> = (0..ends).map(|_| channel.reader()).collect();
            while !readers.is_empty() {
                prop_assert!(writer.try_write(1).is_ok() || channel.len() == 1, "writers work while a reader remains");
                let _ = channel.reader().try_read(); // a temporary end: attaching and dropping it must not retire
                readers.swap_remove(next(readers.len())).retire();
                let closed = matches!(writer.try_write(2), Err(TryWriteError::Channel(_)));
                prop_assert_eq!(closed, readers.is_empty());
            }
        } else {
            let reader = channel.reader();
            let mut writers: Vec<_> = (0..ends).map(|_| channel.writer()).collect();
            while !writers.is_empty() {
                writers.swap_remove(next(writers.len())).retire();
                let closed = matches!(reader.try_read(), Err(TryReadError::Channel(_)));
                prop_assert_eq!(closed, writers.is_empty());
            }
        }
    }
}
