//! Producers and a consumer in separate OS processes, talking over one channel.
//!
//! The seed documents' favourite: work handed between OS processes through a queue. Here
//! three producers run as separate OS processes (this executable started again) and write to
//! one channel that lives in the parent; a consumer, in a fourth OS process, reads until every
//! producer has retired. The process functions are the same as they would be on threads: only
//! the composition says `.os()`. `#[csp::main]` is the one line of set-up.
//!
//! Run: `cargo run --example os_producer_consumer`.

use csp::prelude::*;

#[process]
fn producer(id: u32, jobs: Writer<(u32, u32, u32)>) -> Result<(), csp::Error> {
    for n in 0..5 {
        jobs.write((std::process::id(), id, n))?;
    }
    Ok(())
}

#[process]
fn consumer(jobs: Reader<(u32, u32, u32)>) -> (u32, Vec<(u32, u32, u32)>) {
    (std::process::id(), jobs.iter().collect())
}

#[csp::main]
fn main() -> Result<(), csp::RunError> {
    let jobs = Channel::named("jobs");
    let producers = Parallel::of(
        (0..3)
            .map(|id| producer(id, jobs.writer()).os())
            .collect::<Result<Vec<_>, _>>()?,
    );
    let (produced, (consumer_pid, received)) =
        parallel![producers, consumer(jobs.reader()).os()?].run()?;
    assert!(produced.iter().all(Result::is_ok));
    let mut producer_pids: Vec<u32> = received.iter().map(|&(pid, _, _)| pid).collect();
    producer_pids.sort_unstable();
    producer_pids.dedup();
    let parent = std::process::id();
    println!(
        "parent, consumer and producers are distinct OS processes: {}",
        {
            let mut all = producer_pids.clone();
            all.extend([parent, consumer_pid]);
            all.sort_unstable();
            all.dedup();
            all.len() == 5
        }
    );
    let mut jobs: Vec<(u32, u32)> = received.iter().map(|&(_, id, n)| (id, n)).collect();
    jobs.sort_unstable();
    println!("jobs received: {}", jobs.len());
    for id in 0..3 {
        let from: Vec<String> = jobs
            .iter()
            .filter(|j| j.0 == id)
            .map(|j| j.1.to_string())
            .collect();
        println!("from producer {id}: {}", from.join(" "));
    }
    Ok(())
}
