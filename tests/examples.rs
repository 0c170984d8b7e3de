//! Runs every example and checks what it prints. `cargo test` builds the examples before it
//! runs integration tests, next to this test's own binary.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

fn example(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "example {name} was not built at {}",
        path.display()
    );
    path
}

/// Runs an example with arguments and returns its standard output, failing on a non-zero
/// exit or if it runs longer than [`LIMIT`].
fn run(name: &str, args: &[&str]) -> String {
    let mut child = Command::new(example(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("start example {name}: {error}"));
    let started = Instant::now();
    while child.try_wait().expect("poll the example").is_none() {
        if started.elapsed() > LIMIT {
            child.kill().ok();
            child.wait().ok();
            panic!("example {name} still running after {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let output = child
        .wait_with_output()
        .expect("collect the example's output");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert!(
        output.status.success(),
        "example {name} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn pycsp_parallel_prints_both_processes_then_terminating() {
    let out = run("pycsp_parallel", &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let mut first_two = lines[..2].to_vec();
    first_two.sort_unstable(); // the seed's processes race: either order
    assert_eq!(first_two, ["P1 exiting", "P2 exiting"]);
    assert_eq!(lines[2], "Terminating");
}

#[test]
fn producer_consumer_delivers_every_job_once() {
    let out = run("producer_consumer", &[]);
    assert!(out.contains("jobs received: 30, sum 3135\n"), "{out}");
    assert!(out.contains("every job exactly once: true\n"), "{out}");
    let taken: usize = out
        .lines()
        .filter_map(|line| line.strip_prefix("consumer "))
        .map(|rest| rest.split(' ').nth(2).unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(taken, 30, "{out}");
}

#[test]
fn commstime_reports_per_loop_and_per_communication() {
    let out = run("commstime", &["2000", "2"]);
    let runs: Vec<&str> = out
        .lines()
        .filter(|line| line.starts_with("run "))
        .collect();
    assert_eq!(runs.len(), 2, "{out}");
    for line in runs {
        // "run 1: 12.345 us per loop, 3.086 us per communication"
        let numbers: Vec<f64> = line
            .split([':', ','])
            .skip(1)
            .map(|part| part.split_whitespace().next().unwrap().parse().unwrap())
            .collect();
        let (per_loop, per_communication) = (numbers[0], numbers[1]);
        assert!(per_loop > 0.0, "{line}");
        assert!((per_loop / 4.0 - per_communication).abs() < 0.01, "{line}");
    }
    assert!(out.ends_with("network shut down by poison\n"), "{out}");
}

#[test]
fn dining_philosophers_all_eat_and_the_butler_keeps_one_seat_free() {
    let out = run("dining_philosophers", &["4"]);
    for p in 0..5 {
        assert!(
            out.contains(&format!("philosopher {p} ate 4 meals\n")),
            "{out}"
        );
    }
    for f in 0..5 {
        // Each fork serves its two neighbours, four meals each.
        assert!(
            out.contains(&format!("fork {f} was used 8 times\n")),
            "{out}"
        );
    }
    assert!(
        out.contains("the butler never seated more than 4: true\n"),
        "{out}"
    );
}

#[test]
fn prime_sieve_finds_the_primes_and_shuts_down_by_poison() {
    let out = run("prime_sieve", &["12"]);
    assert!(
        out.contains("first 12 primes: 2 3 5 7 11 13 17 19 23 29 31 37\n"),
        "{out}"
    );
    assert!(
        out.contains("the sieve of 26 processes shut down by poison: true\n"),
        "{out}"
    );
}

#[test]
fn commstime_runs_with_every_process_in_its_own_os_process() {
    let out = run("commstime", &["300", "1", "--os"]);
    assert!(
        out.starts_with("commstime: prefix, delta, succ and consumer each in its own OS process"),
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|line| line.starts_with("run 1: "))
            .count(),
        1,
        "{out}"
    );
    assert!(out.ends_with("network shut down by poison\n"), "{out}");
}

#[test]
fn os_producer_consumer_moves_every_job_between_os_processes() {
    let out = run("os_producer_consumer", &[]);
    assert_eq!(
        out,
        "parent, consumer and producers are distinct OS processes: true\n\
         jobs received: 15\n\
         from producer 0: 0 1 2 3 4\n\
         from producer 1: 0 1 2 3 4\n\
         from producer 2: 0 1 2 3 4\n"
    );
}
