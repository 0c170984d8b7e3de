//! Property: random operations applied to a shared list or dict by several processes at once
//! (on threads, and in separate OS processes) give results, and a final state, that some
//! serial order of those operations gives. Every pattern's server carries out one operation
//! at a time, so this must always hold; what it catches is an operation lost, doubled,
//! applied out of its process's order, or answered with another's result.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::LIMIT;
use csp::patterns::{SharedDict, SharedList};
use csp::prelude::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

csp::child_entry!();

#[derive(Debug, Clone, Serialize, Deserialize)]
enum ListOp {
    Push(u8),
    Pop,
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Get(usize),
    Len,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum DictOp {
    Insert(u8, u8),
    Remove(u8),
    Get(u8),
    Len,
}

/// What an operation answered, comparable between the real run and the model.
type Answer = String;

fn list_op() -> impl Strategy<Value = ListOp> {
    prop_oneof![
        any::<u8>().prop_map(ListOp::Push),
        Just(ListOp::Pop),
        (0usize..4, any::<u8>()).prop_map(|(i, v)| ListOp::Set(i, v)),
        (0usize..4, any::<u8>()).prop_map(|(i, v)| ListOp::Insert(i, v)),
        (0usize..4).prop_map(ListOp::Remove),
        (0usize..4).prop_map(ListOp::Get),
        Just(ListOp::Len),
    ]
}

fn dict_op() -> impl Strategy<Value = DictOp> {
    prop_oneof![
        (0u8..4, any::<u8>()).prop_map(|(k, v)| DictOp::Insert(k, v)),
        (0u8..4).prop_map(DictOp::Remove),
        (0u8..4).prop_map(DictOp::Get),
        Just(DictOp::Len),
    ]
}

fn apply_list(list: &SharedList<u8>, op: &ListOp) -> Answer {
    match *op {
        ListOp::Push(v) => format!("{:?}", list.push(v)),
        ListOp::Pop => format!("{:?}", list.pop()),
        ListOp::Set(i, v) => format!("{:?}", list.set(i, v)),
        ListOp::Insert(i, v) => format!("{:?}", list.insert(i, v)),
        ListOp::Remove(i) => format!("{:?}", list.remove(i)),
        ListOp::Get(i) => format!("{:?}", list.get(i)),
        ListOp::Len => format!("{:?}", list.len()),
    }
}

/// What a handle's method returns, as the model answers it.
type Outcome<T> = Result<T, csp::patterns::PatternError>;

/// The model: what `op` answers on `state`, and the state after it.
fn model_list(state: &mut Vec<u8>, op: &ListOp) -> Answer {
    let length = state.len();
    let out_of_range = |index| csp::patterns::PatternError::OutOfRange { index, length };
    match *op {
        ListOp::Push(v) => {
            state.push(v);
            format!("{:?}", Outcome::Ok(()))
        }
        ListOp::Pop => format!("{:?}", Outcome::Ok(state.pop())),
        ListOp::Set(i, v) if i < length => {
            format!("{:?}", Outcome::Ok(std::mem::replace(&mut state[i], v)))
        }
        ListOp::Insert(i, v) if i <= length => {
            state.insert(i, v);
            format!("{:?}", Outcome::Ok(()))
        }
        ListOp::Insert(i, _) => format!("{:?}", Outcome::<()>::Err(out_of_range(i))),
        ListOp::Remove(i) if i < length => format!("{:?}", Outcome::Ok(state.remove(i))),
        ListOp::Get(i) if i < length => format!("{:?}", Outcome::Ok(state[i])),
        ListOp::Set(i, _) | ListOp::Remove(i) | ListOp::Get(i) => {
            format!("{:?}", Outcome::<u8>::Err(out_of_range(i)))
        }
        ListOp::Len => format!("{:?}", Outcome::Ok(length)),
    }
}

fn apply_dict(dict: &SharedDict<u8, u8>, op: &DictOp) -> Answer {
    match *op {
        DictOp::Insert(k, v) => format!("{:?}", dict.insert(k, v)),
        DictOp::Remove(k) => format!("{:?}", dict.remove(&k)),
        DictOp::Get(k) => format!("{:?}", dict.get(&k)),
        DictOp::Len => format!("{:?}", dict.len()),
    }
}

fn model_dict(state: &mut BTreeMap<u8, u8>, op: &DictOp) -> Answer {
    match *op {
        DictOp::Insert(k, v) => format!("{:?}", Outcome::Ok(state.insert(k, v))),
        DictOp::Remove(k) => format!("{:?}", Outcome::Ok(state.remove(&k))),
        DictOp::Get(k) => format!("{:?}", Outcome::Ok(state.get(&k).copied())),
        DictOp::Len => format!("{:?}", Outcome::Ok(state.len())),
    }
}

#[process]
fn run_list(list: SharedList<u8>, ops: Vec<ListOp>) -> Vec<Answer> {
    ops.iter().map(|op| apply_list(&list, op)).collect()
}

#[process]
fn run_dict(dict: SharedDict<u8, u8>, ops: Vec<DictOp>) -> Vec<Answer> {
    ops.iter().map(|op| apply_dict(&dict, op)).collect()
}

/// Whether some interleaving of `histories` (each process's operations with the answers it
/// saw, in its order), applied serially from `initial` by `model`, gives every answer seen
/// and ends in `last`. A depth-first search over interleavings, remembering states seen.
fn serializable<S: Clone + Eq + std::hash::Hash, O>(
    initial: S,
    histories: &[Vec<(O, Answer)>],
    last: &S,
    model: fn(&mut S, &O) -> Answer,
) -> bool {
    fn search<S: Clone + Eq + std::hash::Hash, O>(
        state: S,
        done: Vec<usize>,
        histories: &[Vec<(O, Answer)>],
        last: &S,
        model: fn(&mut S, &O) -> Answer,
        seen: &mut HashSet<(Vec<usize>, S)>,
    ) -> bool {
        if done.iter().zip(histories).all(|(&d, h)| d == h.len()) {
            return &state == last;
        }
        if !seen.insert((done.clone(), state.clone())) {
            return false;
        }
        (0..histories.len()).any(|p| {
            let Some((op, answer)) = histories[p].get(done[p]) else {
                return false;
            };
            let mut next = state.clone();
            if &model(&mut next, op) != answer {
                return false;
            }
            let mut done = done.clone();
            done[p] += 1;
            search(next, done, histories, last, model, seen)
        })
    }
    let done = vec![0; histories.len()];
    search(initial, done, histories, last, model, &mut HashSet::new())
}

fn run_list_case(
    initial: Vec<u8>,
    programs: Vec<Vec<ListOp>>,
    os: bool,
) -> Result<(), TestCaseError> {
    let list = SharedList::new(initial.clone());
    let processes: Vec<_> = programs
        .iter()
        .map(|ops| {
            let process = run_list(list.clone(), ops.clone());
            if os { process.os().unwrap() } else { process }
        })
        .collect();
    let answers = Parallel::of(processes).run_timeout(LIMIT).unwrap();
    let histories: Vec<Vec<(ListOp, Answer)>> = programs
        .into_iter()
        .zip(answers)
        .map(|(ops, answers)| ops.into_iter().zip(answers).collect())
        .collect();
    let last = list.snapshot().unwrap();
    prop_assert!(
        serializable(initial, &histories, &last, model_list),
        "no serial order explains {histories:?} ending in {last:?}"
    );
    Ok(())
}

fn run_dict_case(programs: Vec<Vec<DictOp>>, os: bool) -> Result<(), TestCaseError> {
    let dict = SharedDict::new();
    let processes: Vec<_> = programs
        .iter()
        .map(|ops| {
            let process = run_dict(dict.clone(), ops.clone());
            if os { process.os().unwrap() } else { process }
        })
        .collect();
    let answers = Parallel::of(processes).run_timeout(LIMIT).unwrap();
    let histories: Vec<Vec<(DictOp, Answer)>> = programs
        .into_iter()
        .zip(answers)
        .map(|(ops, answers)| ops.into_iter().zip(answers).collect())
        .collect();
    let last = dict.snapshot().unwrap();
    prop_assert!(
        serializable(BTreeMap::new(), &histories, &last, model_dict),
        "no serial order explains {histories:?} ending in {last:?}"
    );
    Ok(())
}

fn programs<O: std::fmt::Debug>(
    op: impl Strategy<Value = O>,
) -> impl Strategy<Value = Vec<Vec<O>>> {
    prop::collection::vec(prop::collection::vec(op, 1..6), 2..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn list_operations_from_threads_are_serializable(
        initial in prop::collection::vec(any::<u8>(), 0..4),
        programs in programs(list_op()),
    ) {
        run_list_case(initial, programs, false)?;
    }

    #[test]
    fn dict_operations_from_threads_are_serializable(programs in programs(dict_op())) {
        run_dict_case(programs, false)?;
    }
}

proptest! {
    // Each case starts two or three OS processes: fewer cases.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn list_operations_from_os_processes_are_serializable(
        initial in prop::collection::vec(any::<u8>(), 0..4),
        programs in programs(list_op()),
    ) {
        run_list_case(initial, programs, true)?;
    }

    #[test]
    fn dict_operations_from_os_processes_are_serializable(programs in programs(dict_op())) {
        run_dict_case(programs, true)?;
    }
}

#[test]
fn the_checker_rejects_a_history_no_serial_order_explains() {
    // Two processes each pushed once, yet one saw a length of 3 on an empty list.
    let histories = vec![
        vec![(ListOp::Push(1), "Ok(())".to_string())],
        vec![(ListOp::Len, "Ok(3)".to_string())],
    ];
    assert!(!serializable(Vec::new(), &histories, &vec![1], model_list));
    let honest = vec![
        vec![(ListOp::Push(1), "Ok(())".to_string())],
        vec![(ListOp::Len, "Ok(1)".to_string())],
    ];
    assert!(serializable(Vec::new(), &honest, &vec![1], model_list));
}
