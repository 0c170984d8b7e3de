//! commstime (Welch): the classic CSP communication benchmark.
//!
//! ```text
//!   prefix(0) --a--> delta --c--> succ --b--> prefix
//!                      \--d--> consumer
//! ```
//!
//! Each loop carries four communications (prefix to delta, delta to succ, succ to prefix,
//! delta to consumer). The consumer times `LOOPS` loops and prints the time per loop and per
//! communication, then poisons its input: the poison spreads back through delta, succ and
//! prefix (each passes it on to its channel ends) and the whole network shuts down.
//!
//! Run: `cargo run --release --example commstime [LOOPS] [RUNS] [--os | --tasks]`. With
//! `--os`, each of the four processes runs in its own OS process (the channels stay in this
//! one); with `--tasks`, each is a lightweight process (`async fn`) on the executor.

use std::time::{Duration, Instant};

use csp::prelude::*;

#[process]
fn prefix(initial: u64, input: Reader<u64>, output: Writer<u64>) -> Result<(), csp::Error> {
    output.write(initial)?;
    loop {
        output.write(input.read()?)?;
    }
}

#[process]
fn delta(
    input: Reader<u64>,
    to_succ: Writer<u64>,
    to_consumer: Writer<u64>,
) -> Result<(), csp::Error> {
    loop {
        let value = input.read()?;
        to_consumer.write(value)?;
        to_succ.write(value)?;
    }
}

#[process]
fn succ(input: Reader<u64>, output: Writer<u64>) -> Result<(), csp::Error> {
    loop {
        output.write(input.read()? + 1)?;
    }
}

#[process]
fn consumer(input: Reader<u64>, loops: u64, runs: u32) -> Result<Vec<Duration>, csp::Error> {
    input.read()?; // warm up: the network is running
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        for _ in 0..loops {
            input.read()?;
        }
        times.push(started.elapsed());
    }
    input.poison(); // shut the whole network down
    Ok(times)
}

// The same four processes as lightweight processes: tasks on the executor.

#[process]
async fn prefix_task(
    initial: u64,
    input: Reader<u64>,
    output: Writer<u64>,
) -> Result<(), csp::Error> {
    output.write_async(initial).await?;
    loop {
        output.write_async(input.read_async().await?).await?;
    }
}

#[process]
async fn delta_task(
    input: Reader<u64>,
    to_succ: Writer<u64>,
    to_consumer: Writer<u64>,
) -> Result<(), csp::Error> {
    loop {
        let value = input.read_async().await?;
        to_consumer.write_async(value).await?;
        to_succ.write_async(value).await?;
    }
}

#[process]
async fn succ_task(input: Reader<u64>, output: Writer<u64>) -> Result<(), csp::Error> {
    loop {
        output.write_async(input.read_async().await? + 1).await?;
    }
}

#[process]
async fn consumer_task(
    input: Reader<u64>,
    loops: u64,
    runs: u32,
) -> Result<Vec<Duration>, csp::Error> {
    input.read_async().await?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        for _ in 0..loops {
            input.read_async().await?;
        }
        times.push(started.elapsed());
    }
    input.poison();
    Ok(times)
}

/// Runs `process` where the command line asked.
fn placed<R>(process: Process<R>, os: bool) -> Result<Process<R>, csp::RunError>
where
    R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    if os { process.os() } else { Ok(process) }
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let os = std::env::args().any(|arg| arg == "--os");
    let tasks = std::env::args().any(|arg| arg == "--tasks");
    let mut args = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--os" && arg != "--tasks");
    let loops: u64 = args.next().map_or(Ok(200_000), |s| s.parse())?;
    let runs: u32 = args.next().map_or(Ok(3), |s| s.parse())?;

    let (a, b, c, d) = (
        Channel::named("a"),
        Channel::named("b"),
        Channel::named("c"),
        Channel::named("d"),
    );
    let placement = match (os, tasks) {
        (true, _) => "each in its own OS process",
        (false, true) => "as lightweight processes (tasks)",
        (false, false) => "on threads",
    };
    println!(
        "commstime: prefix, delta, succ and consumer {placement}, {loops} loops x {runs} runs"
    );
    let (_, _, _, times) = if tasks {
        parallel![
            prefix_task(0, b.reader(), a.writer()),
            delta_task(a.reader(), c.writer(), d.writer()),
            succ_task(c.reader(), b.writer()),
            consumer_task(d.reader(), loops, runs),
        ]
        .run()?
    } else {
        parallel![
            placed(prefix(0, b.reader(), a.writer()), os)?,
            placed(delta(a.reader(), c.writer(), d.writer()), os)?,
            placed(succ(c.reader(), b.writer()), os)?,
            placed(consumer(d.reader(), loops, runs), os)?,
        ]
        .run()?
    };
    for (run, time) in times?.iter().enumerate() {
        let per_loop = time.as_secs_f64() * 1e6 / loops as f64;
        println!(
            "run {}: {per_loop:.3} us per loop, {:.3} us per communication",
            run + 1,
            per_loop / 4.0
        );
    }
    println!("network shut down by poison");
    Ok(())
}
