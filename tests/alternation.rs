//! Alternation: guards, preconditions, policies, alternations on both ends of a channel, and
//! the `select!` macro.

mod common;

use std::time::{Duration, Instant};

use common::{join, start, still_blocked, within};
use csp::prelude::*;
use csp::{SelectError, TryReadError};

/// A buffered channel already holding `n` copies of `value`, with its reader.
fn ready<T: Clone + Send + 'static>(value: T, n: usize) -> (Writer<T>, Reader<T>) {
    let (writer, reader) = csp::buffered_channel(n.max(1));
    for _ in 0..n {
        writer.write(value.clone()).unwrap();
    }
    (writer, reader)
}

#[test]
fn priority_takes_the_first_ready_guard_in_order() {
    let (_wa, a) = ready('a', 3);
    let (_wb, b) = ready('b', 3);
    let mut alt = Alternation::priority();
    for _ in 0..3 {
        let got = select! { &mut alt; x = read(a) => x, x = read(b) => x }.unwrap();
        assert_eq!(got, 'a');
    }
    // With `a` drained, `b` is the first ready guard.
    assert_eq!(
        select! { &mut alt; x = read(a) => x, x = read(b) => x }.unwrap(),
        'b'
    );
}

#[test]
fn fair_choice_lets_no_ready_guard_starve() {
    const ROUNDS: usize = 3000;
    let guards: Vec<_> = (0..3).map(|i| ready(i, ROUNDS)).collect();
    let mut alt = Alternation::fair();
    let mut counts = [0usize; 3];
    for _ in 0..ROUNDS {
        let mut inputs: Vec<InputGuard<'_, usize>> = guards
            .iter()
            .map(|(_, reader)| InputGuard::new(reader))
            .collect();
        let mut dynamic: Vec<&mut dyn Guard> = inputs
            .iter_mut()
            .map(|guard| guard as &mut dyn Guard)
            .collect();
        let chosen = alt.select(&mut dynamic).unwrap();
        drop(dynamic);
        assert_eq!(inputs[chosen].take(), Some(chosen));
        counts[chosen] += 1;
    }
    assert_eq!(counts, [ROUNDS / 3; 3], "fair choice rotates exactly");
}

#[test]
fn arbitrary_choice_picks_every_ready_guard_sometimes() {
    let guards: Vec<_> = (0..4).map(|i| ready(i, 400)).collect();
    let mut alt = Alternation::arbitrary();
    let mut counts = [0usize; 4];
    for _ in 0..400 {
        let mut inputs: Vec<_> = guards.iter().map(|(_, r)| InputGuard::new(r)).collect();
        let mut dynamic: Vec<&mut dyn Guard> = inputs
            .iter_mut()
            .map(|guard| guard as &mut dyn Guard)
            .collect();
        counts[alt.select(&mut dynamic).unwrap()] += 1;
    }
    // Each of 4 guards has probability 1/4 per choice; fewer than 40 of 400 is far beyond
    // chance (p < 1e-12).
    assert!(counts.iter().all(|&n| n >= 40), "{counts:?}");
}

#[test]
fn a_false_precondition_keeps_a_ready_guard_out() {
    let (_wa, a) = ready(1, 1);
    let (_wb, b) = ready(2, 1);
    let got = select! {
        x = read(a), if false => x,
        x = read(b), if 1 + 1 == 2 => x,
    }
    .unwrap();
    assert_eq!(got, 2);
    assert_eq!(
        a.try_read().unwrap(),
        1,
        "the disabled guard's value was not taken"
    );
}

#[test]
fn no_enabled_guard_is_an_error_not_a_hang() {
    let (_w, r) = csp::channel::<u8>();
    let result = select! { x = read(r), if false => x, skip, if false => 0 };
    assert_eq!(result, Err(SelectError::NoEnabledGuard));
}

#[test]
fn skip_makes_a_choice_non_blocking() {
    let (_w, r) = csp::channel::<u8>();
    let started = Instant::now();
    let got = select! { x = read(r) => Some(x), skip => None }.unwrap();
    assert_eq!(got, None);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn timeout_fires_when_nothing_else_does() {
    let (_w, r) = csp::channel::<u8>();
    let started = Instant::now();
    let got = select! {
        x = read(r) => format!("read {x}"),
        timeout(Duration::from_millis(500)) => "late".to_string(),
        timeout(Duration::from_millis(30)) => "early".to_string(),
    }
    .unwrap();
    assert_eq!(got, "early", "the earliest timeout fires");
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[test]
fn a_blocked_choice_is_completed_by_a_writer_that_comes_later() {
    let (wa, a) = csp::channel::<u32>();
    let (_wb, b) = csp::channel::<u32>();
    let choice = start(move || select! { x = read(a) => ("a", x), x = read(b) => ("b", x) });
    still_blocked(
        "a choice with nothing ready",
        &choice,
        Duration::from_millis(50),
    );
    wa.write(77).unwrap(); // rendezvous: returns once the choice took the value
    assert_eq!(join("choice", choice).unwrap(), ("a", 77));
}

#[test]
fn output_guards_write_only_when_chosen_and_keep_their_value_otherwise() {
    let (w1, r1) = csp::channel::<String>();
    let (w2, r2) = csp::channel::<String>();
    let reader = start(move || r2.read());
    // Wait until the reader of channel 2 is blocked: then exactly guard 1 is ready.
    let mut first = OutputGuard::new(&w1, "one".to_string());
    let mut second = OutputGuard::new(&w2, "two".to_string());
    let chosen = within_select(&mut first, &mut second);
    assert_eq!(chosen, 1);
    assert_eq!(
        first.take().as_deref(),
        Some("one"),
        "the unchosen value is kept"
    );
    assert_eq!(second.take(), None, "the chosen value was delivered");
    assert_eq!(join("reader", reader).unwrap(), "two");
    assert!(matches!(r1.try_read(), Err(TryReadError::Empty { .. })));
}

fn within_select(
    first: &mut OutputGuard<'_, String>,
    second: &mut OutputGuard<'_, String>,
) -> usize {
    Alternation::priority()
        .select(&mut [first as &mut dyn Guard, second])
        .unwrap()
}

#[test]
fn an_alternating_reader_meets_an_alternating_writer() {
    for round in 0..200 {
        let (w1, r1) = csp::channel::<u32>();
        let (w2, r2) = csp::channel::<u32>();
        let reader = start(move || select! { x = read(r1) => (1, x), x = read(r2) => (2, x) });
        let writer = start(move || {
            select! { write(w2, 20) => 2, write(w1, 10) => 1 }
        });
        let (read_from, value) = join(&format!("round {round}: reader"), reader).unwrap();
        let written_to = join(&format!("round {round}: writer"), writer).unwrap();
        assert_eq!(
            read_from, written_to,
            "round {round}: both sides fired the same channel"
        );
        assert_eq!(
            value,
            written_to * 10,
            "round {round}: the value of that channel"
        );
    }
}

#[test]
fn a_choice_over_a_poisoned_channel_reports_which_guard() {
    let (_wa, a) = csp::channel::<u8>();
    let (wb, b) = csp::channel::<u8>();
    wb.poison();
    match select! { x = read(a) => x, x = read(b) => x } {
        Err(SelectError::Channel { guard, error }) => {
            assert_eq!(guard, 1);
            assert!(error.is_poisoned());
            assert_eq!(error.channel(), b.name());
        }
        other => panic!("expected a poisoned guard, got {other:?}"),
    }
}

#[test]
fn a_blocked_choice_wakes_on_poison_and_on_retire() {
    for poison in [true, false] {
        let (wa, a) = csp::channel::<u8>();
        let (_wb, b) = csp::channel::<u8>();
        let choice = start(move || select! { x = read(a) => x, x = read(b) => x });
        still_blocked(
            "a choice with nothing ready",
            &choice,
            Duration::from_millis(50),
        );
        if poison {
            wa.poison();
        } else {
            wa.retire();
        }
        match join("choice", choice) {
            Err(SelectError::Channel { guard: 0, error }) => {
                assert_eq!((error.is_poisoned(), error.is_retired()), (poison, !poison));
            }
            other => panic!("expected guard 0 to fail, got {other:?}"),
        }
    }
}

#[test]
fn one_alternation_serves_a_loop_with_mixed_guards() {
    let (wa, a) = csp::buffered_channel::<u32>(8);
    let (out, results) = csp::buffered_channel::<u32>(8);
    for n in 1..=3 {
        wa.write(n).unwrap();
    }
    let mut alt = Alternation::fair();
    let mut pending: Option<u32> = None;
    let mut idle = 0;
    while idle < 2 {
        let can_write = pending.is_some();
        let value = pending.unwrap_or_default();
        let step = select! {
            &mut alt;
            x = read(a), if !can_write => { pending = Some(x * 100); "read" },
            write(out, value), if can_write => { pending = None; "wrote" },
            timeout(Duration::from_millis(20)) => { idle += 1; "idle" },
        }
        .unwrap();
        assert_ne!(step, "", "every arm yields a step");
    }
    drop(out);
    assert_eq!(results.iter().collect::<Vec<_>>(), [100, 200, 300]);
}

#[test]
fn the_choice_a_writer_sees_matches_what_the_reader_got() {
    // Many writers offer through alternations; one reader reads plainly. Every value offered
    // by a guard that reported "chosen" must be read exactly once.
    let channel = Channel::<(usize, u32)>::new();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let writer = channel.writer();
            start(move || {
                let mut delivered = Vec::new();
                for i in 0..200u32 {
                    let chosen = select! {
                        write(writer, (w, i)) => true,
                        timeout(Duration::from_micros(50)) => false,
                    }
                    .unwrap();
                    if chosen {
                        delivered.push((w, i));
                    }
                }
                delivered
            })
        })
        .collect();
    let reader = channel.reader();
    let read = start(move || reader.iter().collect::<Vec<_>>());
    let mut delivered: Vec<_> = writers
        .into_iter()
        .flat_map(|writer| join("writer", writer))
        .collect();
    let mut got = join("reader", read);
    delivered.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, delivered);
}

#[test]
fn select_accepts_ends_by_value_or_by_reference() {
    let (w, r) = csp::buffered_channel::<u8>(2);
    w.write(1).unwrap();
    w.write(2).unwrap();
    let by_ref = &r;
    assert_eq!(select! { x = read(by_ref) => x }.unwrap(), 1);
    assert_eq!(select! { x = read(r) => x }.unwrap(), 2);
    let w_ref = &w;
    assert!(select! { write(w_ref, 3) => true, skip => false }.unwrap());
}

#[test]
fn a_timeout_only_choice_just_waits() {
    let started = Instant::now();
    let got = within("timeout-only choice", || {
        select! { timeout(Duration::from_millis(20)) => 5 }.unwrap()
    });
    assert_eq!(got, 5);
    assert!(started.elapsed() >= Duration::from_millis(20));
}

#[test]
fn a_guard_holding_an_untaken_value_stays_out_of_the_choice() {
    // Reusing an input guard without taking its value must neither lose the value nor drop it
    // under the channel's lock (a value whose drop touches the channel would deadlock).
    struct Noisy(Channel<Noisy>);
    impl Drop for Noisy {
        fn drop(&mut self) {
            let _ = self.0.len(); // locks the channel
        }
    }
    let channel = Channel::<Noisy>::buffered(2);
    let (writer, reader) = (channel.writer(), channel.reader());
    writer.write(Noisy(channel.clone())).unwrap();
    writer.write(Noisy(channel.clone())).unwrap();
    let outcome = within("reusing a guard without take", move || {
        let mut input = InputGuard::new(&reader);
        let mut alt = Alternation::priority();
        let first = alt.select(&mut [&mut input as &mut dyn Guard]);
        let second = alt.select(&mut [&mut input as &mut dyn Guard]);
        let kept = input.take().is_some();
        let after_take = alt.select(&mut [&mut input as &mut dyn Guard]);
        (first, second, kept, after_take, input.take().is_some())
    });
    assert_eq!(outcome.0, Ok(0));
    assert_eq!(
        outcome.1,
        Err(SelectError::NoEnabledGuard),
        "an untaken value disables the guard"
    );
    assert!(outcome.2, "the first value was kept, not overwritten");
    assert_eq!(outcome.3, Ok(0));
    assert!(outcome.4);
    assert_eq!(channel.len(), 0);
}
