//! Pictures of networks as Graphviz DOT: a known network against a checked-in expectation.

mod common;

use common::LIMIT;
use csp::prelude::*;

csp::child_entry!();

#[process]
fn produce(out: Writer<u32>, count: u32) -> Result<(), csp::Error> {
    for n in 0..count {
        out.write(n)?;
    }
    Ok(())
}

#[process]
async fn double(input: Reader<u32>, out: Writer<u32>) -> Result<(), csp::Error> {
    while let Ok(n) = input.read_async().await {
        out.write_async(n * 2).await?;
    }
    Ok(())
}

#[process]
fn total(input: Reader<u32>) -> u32 {
    input.iter().sum()
}

/// What the pipeline's three processes return.
type Results = (Result<(), csp::Error>, Result<(), csp::Error>, u32);

fn network() -> Process<Results> {
    let (numbers, doubled) = (
        Channel::named("numbers"),
        Channel::named_buffered("doubled", 4),
    );
    parallel![
        produce(numbers.writer(), 5).os().unwrap(),
        double(numbers.reader(), doubled.writer()),
        total(doubled.reader()),
    ]
}

#[test]
fn the_picture_of_a_known_network_matches_the_expectation() {
    let network = network(); // kept: dropping it would retire its channels
    let expected = include_str!("expected/pipeline.dot");
    assert_eq!(network.picture().to_dot(), expected);
}

#[test]
fn a_picture_taken_before_a_run_shows_the_traffic_after_it() {
    let network = network();
    let picture = network.picture();
    let (_, _, sum) = network.run_timeout(LIMIT).unwrap();
    assert_eq!(sum, 20);
    let dot = picture.to_dot();
    assert!(
        dot.contains(r#"p0 -> p1 [label="numbers\n5 messages\nretired", style=dashed];"#),
        "{dot}"
    );
    assert!(
        dot.contains(
            r#"p1 -> p2 [label="doubled\nbuffered 4\n5 messages\nretired", style=dashed];"#
        ),
        "{dot}"
    );
}

#[test]
fn a_channel_held_outside_the_picture_is_drawn_from_outside() {
    let channel = Channel::<u32>::named("input");
    let dot = total(channel.reader()).picture().to_dot();
    assert!(dot.contains("outside [shape=plaintext"), "{dot}");
    assert!(dot.contains(r#"outside -> p0 [label="input"];"#), "{dot}");
}
