//! Producers and consumers on one any-to-any channel.
//!
//! Three producers write ten jobs each into one rendezvous channel; two consumers take jobs
//! as they come. When the last producer finishes, its end is dropped, the writing side
//! retires, and the consumers' loops end: no sentinel values, no explicit close.
//!
//! Run: `cargo run --example producer_consumer`.

use csp::prelude::*;

#[process]
fn producer(id: u32, jobs: Writer<(u32, u32)>) -> Result<(), csp::Error> {
    for n in 0..10 {
        jobs.write((id, id * 100 + n))?;
    }
    Ok(()) // `jobs` is dropped here: this producer retires
}

#[process]
fn consumer(jobs: Reader<(u32, u32)>) -> Vec<(u32, u32)> {
    jobs.iter().collect() // ends when every producer has retired
}

fn main() -> Result<(), csp::RunError> {
    let jobs = Channel::named("jobs");
    let producers = Parallel::of((0..3).map(|id| producer(id, jobs.writer())));
    let consumers = Parallel::of((0..2).map(|_| consumer(jobs.reader())));
    let (produced, consumed) = parallel![producers, consumers].run()?;
    assert!(produced.iter().all(Result::is_ok));
    for (i, got) in consumed.iter().enumerate() {
        println!("consumer {i} took {} jobs", got.len());
    }
    let mut all: Vec<u32> = consumed.into_iter().flatten().map(|(_, job)| job).collect();
    all.sort_unstable();
    println!(
        "jobs received: {}, sum {}",
        all.len(),
        all.iter().sum::<u32>()
    );
    println!(
        "every job exactly once: {}",
        all == (0..3)
            .flat_map(|id| (0..10).map(move |n| id * 100 + n))
            .collect::<Vec<_>>()
    );
    Ok(())
}
