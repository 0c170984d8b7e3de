//! The prime sieve of Eratosthenes as a growing pipeline of processes.
//!
//! A generator writes 2, 3, 4, ...; each `sieve` process reads its first number (a prime),
//! reports it, then filters out its multiples and, in `Parallel` with that filter, starts the
//! next sieve downstream: the network grows one process pair per prime. When the printer has
//! what it wants, it poisons its input; the poison travels up the whole chain and every
//! process ends.
//!
//! Run: `cargo run --example prime_sieve [COUNT]`.

#[path = "common/dot.rs"]
mod dot;

use csp::prelude::*;

#[process]
fn generate(output: Writer<u64>) -> Result<(), csp::Error> {
    for n in 2.. {
        output.write(n)?;
    }
    Ok(())
}

#[process]
fn filter(prime: u64, input: Reader<u64>, output: Writer<u64>) -> Result<(), csp::Error> {
    loop {
        let n = input.read()?;
        if n % prime != 0 {
            output.write(n)?;
        }
    }
}

#[process]
fn sieve(input: Reader<u64>, primes: Writer<u64>) -> Result<(), csp::Error> {
    let prime = input.read()?;
    primes.write(prime)?;
    let rest = Channel::new();
    let (filtered, downstream) = parallel![
        filter(prime, input, rest.writer()),
        sieve(rest.reader(), primes)
    ]
    .run()?;
    filtered.and(downstream)
}

#[process]
fn print_primes(primes: Reader<u64>, count: usize) -> Result<Vec<u64>, csp::Error> {
    let found: Vec<u64> = (0..count)
        .map(|_| primes.read())
        .collect::<Result<_, _>>()?;
    primes.poison();
    Ok(found)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `--dot FILE`: write a picture of the network (Graphviz DOT) once it has run. The
    // picture shows the network as composed; the sieves it grows while running are inside
    // the first sieve.
    let (dot, args) = dot::dot_option();
    let count: usize = args.first().map_or(Ok(20), |s| s.parse())?;
    let (numbers, primes) = (Channel::named("numbers"), Channel::named("primes"));
    let network = parallel![
        generate(numbers.writer()),
        sieve(numbers.reader(), primes.writer()),
        print_primes(primes.reader(), count),
    ];
    let picture = network.picture();
    let (generated, sieved, found) = network.run()?;
    if let Some(path) = dot {
        std::fs::write(&path, picture.to_dot())?;
        println!("picture written to {path}");
    }
    let found = found?;
    let text: Vec<String> = found.iter().map(u64::to_string).collect();
    println!("first {count} primes: {}", text.join(" "));
    let poisoned = |result: &Result<(), csp::Error>| {
        result
            .as_ref()
            .is_err_and(|e| e.channel_error().is_some_and(|e| e.is_poisoned()))
    };
    println!(
        "the sieve of {} processes shut down by poison: {}",
        2 * found.len() + 2,
        poisoned(&generated) && poisoned(&sieved)
    );
    Ok(())
}
