//! Blocking writes of one thread to a buffered channel in another OS process go out without
//! waiting for an answer, into slots the channel's home reserved ("writes ahead"). These
//! tests check that nobody can tell: the values are in the buffer before anyone can learn
//! the writes returned, the buffer never holds more than its capacity, unused slots come
//! back, and a writer that dies loses none of the writes that returned.

mod common;

use common::LIMIT;
use csp::prelude::*;

csp::child_entry!();

#[process]
fn write_all(out: Writer<u64>, count: u64) -> Result<u64, csp::Error> {
    for n in 0..count {
        out.write(n)?;
    }
    Ok(count)
}

#[test]
fn values_written_ahead_are_in_the_buffer_when_the_child_is_done() {
    let channel = Channel::<u64>::buffered(64);
    let reader = channel.reader();
    let written = write_all(channel.writer(), 40)
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!(written, 40);
    assert_eq!(
        channel.len(),
        40,
        "every write that returned is in the buffer"
    );
    let got: Vec<u64> = (0..40).map(|_| reader.try_read().unwrap()).collect();
    assert_eq!(got, (0..40).collect::<Vec<_>>());
}

#[test]
fn a_writer_dropped_after_writes_ahead_retires_only_after_them() {
    let channel = Channel::<u64>::named_buffered("ahead", 16);
    let reader = channel.reader();
    let child = write_all(channel.writer(), 1000).os().unwrap().spawn();
    drop(channel);
    // Reads while the child writes; ends when the child's end retires, after every value.
    let got: Vec<u64> = reader.iter().collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>(), "in order, none lost");
    assert_eq!(child.join_timeout(LIMIT).unwrap().unwrap(), 1000);
}

#[process]
fn write_then_die(out: Writer<u64>, count: u64) -> Result<(), csp::Error> {
    for n in 0..count {
        out.write(n)?;
    }
    // Every write above returned: now die at once, without a word.
    std::process::abort();
}

#[test]
fn a_child_killed_after_writing_ahead_loses_none_of_the_writes_that_returned() {
    let channel = Channel::<u64>::named_buffered("before death", 4096);
    let reader = channel.reader();
    let outcome = write_then_die(channel.writer(), 3000)
        .os()
        .unwrap()
        .run_timeout(LIMIT);
    assert!(
        matches!(outcome, Err(csp::RunError::ChildDied { .. })),
        "{outcome:?}"
    );
    let mut got = Vec::new();
    while let Ok(n) = reader.read_timeout(LIMIT) {
        got.push(n);
    }
    assert_eq!(got.len(), 3000, "every acknowledged write arrived");
    assert_eq!(got, (0..3000).collect::<Vec<_>>(), "in order");
}

#[process]
fn fill_then_try_one_more(out: Writer<u64>, capacity: u64) -> Result<(u64, bool), csp::Error> {
    for n in 0..capacity {
        out.write(n)?;
    }
    let full = out.try_write(capacity).is_err();
    Ok((capacity, full))
}

#[test]
fn a_writer_in_a_child_never_fills_a_buffer_past_its_capacity() {
    let channel = Channel::<u64>::buffered(8);
    let reader = channel.reader();
    let (written, full) = fill_then_try_one_more(channel.writer(), 8)
        .os()
        .unwrap()
        .run_timeout(LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!((written, full), (8, true), "the ninth value found no room");
    assert_eq!(channel.len(), 8);
    drop(reader);
}

#[process]
fn write_two_then_wait(out: Writer<u64>, go: Reader<()>) -> Result<(), csp::Error> {
    out.write(1)?;
    out.write(2)?; // asks for slots to write ahead into
    go.read()?; // any other operation ends the burst: the slots go back
    go.read()?; // still holding the writer
    Ok(())
}

#[test]
fn slots_a_child_did_not_use_are_room_for_everyone_again() {
    let (channel, go) = (Channel::<u64>::buffered(8), Channel::<()>::new());
    let (writer, reader) = (channel.writer(), channel.reader());
    let child = write_two_then_wait(channel.writer(), go.reader())
        .os()
        .unwrap()
        .spawn();
    let go = go.writer();
    // Taken: the child's burst ended before its read, on the same connection.
    go.write(()).unwrap();
    let mut room = 0;
    while writer.try_write(room).is_ok() {
        room += 1;
    }
    assert_eq!(room, 6, "two values buffered, six slots free");
    go.write(()).unwrap();
    child.join_timeout(LIMIT).unwrap().unwrap();
    assert_eq!(reader.try_read().unwrap(), 1);
}
