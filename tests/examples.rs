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
    run_with(name, args, &[])
}

/// [`run`] with extra environment variables.
fn run_with(name: &str, args: &[&str], environment: &[(&str, &str)]) -> String {
    let mut child = Command::new(example(name))
        .args(args)
        .envs(environment.iter().copied())
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

// The seed programs about Python's multiprocessing, ported: each runs its children as
// separate OS processes, and prints what the seed shows (up to the seed's own races).

fn lines(out: &str) -> Vec<&str> {
    out.lines().collect()
}

/// The lines of `out` in sorted order, for output whose order the seed leaves to a race.
fn sorted_lines(out: &str) -> Vec<&str> {
    let mut lines = lines(out);
    lines.sort_unstable();
    lines
}

#[test]
fn mp_queue_hello_and_mp_pipe_hello_print_the_seeds_list() {
    assert_eq!(run("mp_queue_hello", &[]), "[42, None, 'hello']\n");
    assert_eq!(run("mp_pipe_hello", &[]), "[42, None, 'hello']\n");
}

#[test]
fn mp_manager_records_adds_a_record_in_one_child_and_prints_it_from_another() {
    let records = |names: [(&str, u32); 4]| -> String {
        names
            .iter()
            .map(|(name, score)| format!("Name: {name}\nScore: {score}\n\n"))
            .collect()
    };
    assert_eq!(
        run("mp_manager_records", &[]),
        format!(
            "A New record is added\n\n{}",
            records([
                ("Computers", 1),
                ("Histoty", 5),
                ("Hindi", 9),
                ("English", 3)
            ])
        )
    );
    assert_eq!(
        run("mp_manager_records", &["geeks"]),
        format!(
            "New record added!\n\n{}",
            records([("Sam", 10), ("Adam", 9), ("Kevin", 9), ("Jeff", 8)])
        )
    );
}

#[test]
fn mp_namespace_shows_the_childs_changes() {
    assert_eq!(
        run("mp_namespace", &[]),
        "before Namespace(x=1, y=1)\nafter Namespace(x=6, y=10)\n"
    );
}

#[test]
fn mp_value_array_prints_the_value_and_the_negated_array() {
    assert_eq!(
        run("mp_value_array", &[]),
        "3.1415927\n[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]\n"
    );
}

#[test]
fn mp_isolation_leaves_the_parents_global_empty() {
    assert_eq!(
        run("mp_isolation", &[]),
        "Result(in process p1): [1, 4, 9, 16]\nResult(in main program): []\n"
    );
}

#[test]
fn mp_shared_squares_shows_the_squares_and_their_sum_in_both_processes() {
    assert_eq!(
        run("mp_shared_squares", &[]),
        "Result(in process p1): [1, 4, 9, 16]\nSum of squares(in process p1): 30\n\
         Result(in main program): [1, 4, 9, 16]\nSum of squares(in main program): 30\n"
    );
}

#[test]
fn mp_queue_squares_prints_the_queue_until_empty() {
    assert_eq!(
        run("mp_queue_squares", &[]),
        "Queue elements:\n1\n4\n9\n16\nQueue is now empty!\n"
    );
}

#[test]
fn mp_pipe_messages_sends_and_receives_up_to_end_each_in_order() {
    let out = run("mp_pipe_messages", &[]);
    let sent: Vec<&str> = lines(&out)
        .into_iter()
        .filter_map(|line| line.strip_prefix("Sent the message: "))
        .collect();
    let received: Vec<&str> = lines(&out)
        .into_iter()
        .filter_map(|line| line.strip_prefix("Received the message: "))
        .collect();
    assert_eq!(sent, ["hello", "hey", "hru?", "END"], "{out}");
    assert_eq!(received, ["hello", "hey", "hru?"], "{out}");
    assert_eq!(lines(&out).len(), 7, "{out}");
}

#[test]
fn mp_pipe_one_and_mp_queue_one_print_what_the_parent_sent() {
    assert_eq!(run("mp_pipe_one", &[]), "1\n");
    assert_eq!(run("mp_queue_one", &[]), "1\n");
}

#[test]
fn mp_barrier_gives_two_distinct_indices_and_index_zero_passes() {
    let out = run("mp_barrier", &[]);
    assert_eq!(
        sorted_lines(&out),
        ["0", "1", "passed the barrier"],
        "{out}"
    );
    let zero = out.find("0\n").expect("index 0");
    assert_eq!(&out[zero..zero + 21], "0\npassed the barrier\n", "{out}");
}

#[test]
fn mp_condition_wakes_the_waiter_which_pops_one_appended_item() {
    let out = run("mp_condition", &[]);
    let item: u32 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("one number: {out}"));
    assert!(item < 10, "{out}");
    assert_eq!(lines(&out).len(), 1, "{out}");
}

#[test]
fn mp_event_times_out_one_waiter_and_wakes_the_other() {
    let out = run("mp_event", &[]);
    let lines = lines(&out);
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[0], "main: waiting before calling Event.set()");
    let mut starting = lines[1..3].to_vec();
    starting.sort_unstable();
    assert_eq!(
        starting,
        [
            "wait_for_event: starting",
            "wait_for_event_timeout: starting"
        ]
    );
    assert_eq!(lines[3], "wait_for_event_timeout: e.is_set()-> False");
    let mut last = lines[4..].to_vec();
    last.sort_unstable();
    assert_eq!(
        last,
        ["main: event is set", "wait_for_event: e.is_set()-> True"]
    );
}

#[test]
fn mp_queue_three_gets_one_item_from_each_of_three_processes() {
    let out = run("mp_queue_three", &[]);
    let mut items: Vec<&str> = lines(&out)
        .into_iter()
        .filter(|line| !line.starts_with("son process"))
        .collect();
    items.sort_unstable();
    assert_eq!(items, ["1", "2", "3"], "{out}");
    let mut pids: Vec<&str> = lines(&out)
        .into_iter()
        .filter_map(|line| line.strip_prefix("son process "))
        .map(|rest| rest.split(' ').next().unwrap())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three distinct OS processes: {out}");
}

#[test]
fn mp_pipe_dialogue_goes_both_ways() {
    assert_eq!(
        run("mp_pipe_dialogue", &[]),
        "Hi daddy!\nrespnse:Hi child!\n"
    );
}

#[test]
fn mp_manager_dict_list_collects_ten_processes_entries() {
    let out = run("mp_manager_dict_list", &[]);
    let lines = lines(&out);
    assert_eq!(lines.len(), 2, "{out}");
    let dict: Vec<String> = (0..10).map(|i| format!("'{i}': 'Test'")).collect();
    assert_eq!(lines[0], format!("{{{}}}", dict.join(", ")));
    let mut list: Vec<&str> = lines[1]
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(", ")
        .collect();
    list.sort_unstable();
    let expected: Vec<String> = (0..10).map(|i| format!("'{i}'")).collect();
    assert_eq!(list, expected, "{out}");
}

#[test]
fn the_sieve_and_the_philosophers_write_pictures_of_their_networks() {
    let directory = std::env::temp_dir().join(format!("csp-pictures-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let sieve = directory.join("sieve.dot");
    run("prime_sieve", &["5", "--dot", sieve.to_str().unwrap()]);
    let dot = std::fs::read_to_string(&sieve).unwrap();
    assert!(dot.starts_with("digraph network {"), "{dot}");
    assert!(dot.contains(r#"p0 -> p1 [label="numbers\n"#), "{dot}");
    assert!(
        dot.contains("poisoned"),
        "the sieve shuts down by poison: {dot}"
    );
    let dining = directory.join("dining.dot");
    run(
        "dining_philosophers",
        &["2", "--dot", dining.to_str().unwrap()],
    );
    let dot = std::fs::read_to_string(&dining).unwrap();
    for p in 0..5 {
        assert!(
            dot.contains(&format!(r#"[label="philosopher {p}\n(thread)"]"#)),
            "{dot}"
        );
    }
    assert!(dot.contains(r#"[label="butler\n(thread)"]"#), "{dot}");
    std::fs::remove_dir_all(&directory).unwrap();
}

/// With detection off for the whole run, waits are not counted at all: every placement
/// still communicates, joins and ends as before.
#[test]
fn commstime_runs_in_every_placement_with_deadlock_detection_off_from_the_start() {
    for placement in [None, Some("--tasks"), Some("--os")] {
        let mut args = vec!["300", "1"];
        args.extend(placement);
        let out = run_with("commstime", &args, &[("CSP_DEADLOCK_DETECTION", "off")]);
        assert!(
            out.lines().any(|line| line.contains("per communication")),
            "{placement:?}: {out}"
        );
    }
}
