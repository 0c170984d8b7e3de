//! A token ring of lightweight processes: N processes in a circle, each passing the token on
//! to the next; measures the time per hop and the memory per process.
//!
//! ```text
//!   relay 0 --> relay 1 --> ... --> relay N-1 --+
//!      ^----------------------------------------+
//! ```
//!
//! Run: `cargo run --release --example token_ring [N] [LAPS]` (default 100,000 processes,
//! 10 laps). A million processes run too: `-- 1000000 3`.

use std::time::Instant;

use csp::prelude::*;

/// Passes every token on, one higher, until its input is poisoned.
#[process]
async fn relay(input: Reader<u64>, output: Writer<u64>) -> Result<(), csp::Error> {
    loop {
        let token = input.read_async().await?;
        output.write_async(token + 1).await?;
    }
}

/// This OS process's resident memory, in bytes (Linux).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let laps: u64 = args.next().map_or(Ok(10), |s| s.parse())?;
    assert!(size >= 2, "a ring needs at least two processes");

    let before = resident_bytes();
    // Process i reads channel i and writes channel i + 1; this thread closes the circle.
    let channels: Vec<Channel<u64>> = (0..size).map(|_| Channel::new()).collect();
    let relays: Vec<_> = (0..size - 1)
        .map(|i| relay(channels[i].reader(), channels[i + 1].writer()))
        .collect();
    let (first, last) = (channels[0].writer(), channels[size - 1].reader());
    drop(channels);
    let ring = Parallel::of(relays).spawn();
    // One lap to start every process, then the timed laps.
    first.write(0)?;
    let mut token = last.read()?;
    let during = resident_bytes();
    let started = Instant::now();
    for _ in 0..laps {
        first.write(token)?;
        token = last.read()?;
    }
    let elapsed = started.elapsed();
    first.poison(); // ends every relay, passed on around the ring
    let ended = ring.join()?;
    let hops = laps * size as u64;
    println!("token ring: {size} lightweight processes, {laps} laps");
    println!(
        "time per hop: {:.1} ns",
        elapsed.as_nanos() as f64 / hops as f64
    );
    println!(
        "memory per process: {:.0} bytes",
        during.saturating_sub(before) as f64 / size as f64
    );
    println!(
        "token after the laps: {token} (expected {})",
        (laps + 1) * (size as u64 - 1)
    );
    let poisoned = ended.iter().filter(|result| result.is_err()).count();
    println!("processes ended by poison: {poisoned} of {}", size - 1);
    Ok(())
}
