//! The benchmark suite: csp side by side with its peers, every workload measured for csp and
//! for every peer in the same run, so that the ratios compare like with like on this machine.
//!
//! Workloads: commstime, ping-pong, one-way throughput of 8-byte messages, StressedAlt, a
//! token ring, and process start time. Peers: Go (goroutines and channels,
//! `benches/peers/go`, built with `go build` into `target/bench-peers/`), the Rust channel
//! crates crossbeam-channel, flume and kanal (on threads, here), PyCSP 0.9.2 (`@process` and
//! `@multiprocess`, `benches/peers/pycsp`, from the virtualenv `target/bench-venv`) and Python
//! `multiprocessing`. A peer that is missing reads n/a, with the reason in the notes.
//!
//! Prints Markdown: for each workload a table of medians, spreads (min to max over the
//! repeats) and time ratios csp / peer (below 1: csp is faster), then the targets and notes.
//!
//! Run: `bench/run` (installs the peers, runs this unpinned and pinned to one CPU), or
//! `cargo bench --bench suite [-- --quick] [-- --only commstime,ring]`.
//!
//! csp runs three ways: processes on threads, in child OS processes (`.os()`), and as
//! lightweight processes (`#[process] async fn`, tasks on csp's executor); the ratio columns
//! compare every row with each of them, and the targets table checks the bounds.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use csp::prelude::*;
use serde_bytes::ByteBuf;

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// Operation counts per measurement, full or `--quick`.
#[derive(Debug, Clone, Copy)]
struct Counts {
    repeats: usize,
    commstime_csp: u64,
    commstime_csp_os: u64,
    commstime_go: u64,
    commstime_rust: u64,
    commstime_pycsp: u64,
    commstime_pycsp_mp: u64,
    pingpong_csp: u64,
    pingpong_csp_os: u64,
    pingpong_go: u64,
    pingpong_rust: u64,
    oneway_csp: u64,
    oneway_csp_os: u64,
    oneway_go: u64,
    oneway_rust: u64,
    alt_writers_go: usize,
    alt_writers_csp: usize,
    alt_selections_csp: u64,
    alt_selections_go: u64,
    ring_csp_rounds: u64,
    commstime_tasks: u64,
    commstime_tasks_parallel: u64,
    pingpong_tasks: u64,
    pingpong_tasks_parallel: u64,
    oneway_tasks: u64,
    alt_writers_tasks: usize,
    alt_selections_tasks: u64,
    start_tasks: u64,
    /// (processes, rounds) for Go.
    ring_go: [(u64, u64); 3],
    start_csp: u64,
    start_csp_os: u64,
    start_go: u64,
    start_python: u64,
    /// (message size, messages in this OS process, messages from a child OS process).
    oneway_large: [(usize, u64, u64); 2],
}

const FULL: Counts = Counts {
    repeats: 7,
    commstime_csp: 50_000,
    commstime_csp_os: 5_000,
    commstime_go: 500_000,
    commstime_rust: 20_000,
    commstime_pycsp: 3_000,
    commstime_pycsp_mp: 1_000,
    pingpong_csp: 50_000,
    pingpong_csp_os: 20_000,
    pingpong_go: 500_000,
    pingpong_rust: 20_000,
    oneway_csp: 2_000_000,
    oneway_csp_os: 50_000,
    oneway_go: 5_000_000,
    oneway_rust: 2_000_000,
    alt_writers_go: 1_000,
    alt_writers_csp: 1_000,
    alt_selections_csp: 50_000,
    alt_selections_go: 500_000,
    ring_csp_rounds: 20,
    commstime_tasks: 200_000,
    commstime_tasks_parallel: 50_000,
    pingpong_tasks: 200_000,
    pingpong_tasks_parallel: 20_000,
    oneway_tasks: 2_000_000,
    alt_writers_tasks: 1_000,
    alt_selections_tasks: 200_000,
    start_tasks: 20_000,
    ring_go: [(1_000, 1_000), (100_000, 10), (1_000_000, 2)],
    start_csp: 2_000,
    start_csp_os: 20,
    start_go: 100_000,
    start_python: 10,
    oneway_large: [(64 << 10, 20_000, 5_000), (1 << 20, 1_000, 500)],
};

const QUICK: Counts = Counts {
    repeats: 3,
    commstime_csp: 10_000,
    commstime_csp_os: 1_000,
    commstime_go: 100_000,
    commstime_rust: 10_000,
    commstime_pycsp: 500,
    commstime_pycsp_mp: 200,
    pingpong_csp: 10_000,
    pingpong_csp_os: 4_000,
    pingpong_go: 100_000,
    pingpong_rust: 10_000,
    oneway_csp: 500_000,
    oneway_csp_os: 10_000,
    oneway_go: 1_000_000,
    oneway_rust: 500_000,
    alt_writers_go: 1_000,
    alt_writers_csp: 1_000,
    alt_selections_csp: 20_000,
    alt_selections_go: 100_000,
    ring_csp_rounds: 5,
    commstime_tasks: 50_000,
    commstime_tasks_parallel: 10_000,
    pingpong_tasks: 50_000,
    pingpong_tasks_parallel: 5_000,
    oneway_tasks: 500_000,
    alt_writers_tasks: 1_000,
    alt_selections_tasks: 50_000,
    start_tasks: 5_000,
    ring_go: [(1_000, 200), (100_000, 3), (1_000_000, 1)],
    start_csp: 500,
    start_csp_os: 5,
    start_go: 20_000,
    start_python: 3,
    oneway_large: [(64 << 10, 4_000, 1_000), (1 << 20, 200, 100)],
};

/// The number of channels StressedAlt's reader chooses among.
const ALT_CHANNELS: usize = 10;
/// The capacity of the buffered channel of the one-way workload.
const ONEWAY_CAPACITY: usize = 128;
/// The processes of csp's token ring on threads (one OS thread each).
const RING_CSP_THREADS: u64 = 1_000;
/// How long one run of a peer may take before it is killed and reported n/a.
const PEER_TIMEOUT: Duration = Duration::from_secs(180);

/// The row key of csp on threads, the reference of the first ratio column.
const CSP_THREADS: &str = "csp-threads";
/// The row key of csp with processes in their own OS processes.
const CSP_OS: &str = "csp-os";
/// The row key of csp's lightweight processes (`#[process] async fn`, tasks on the executor).
const CSP_TASKS: &str = "csp-tasks";
/// The argument that makes this executable run one token ring of tasks and print its JSON
/// (the token ring's csp-tasks rows run each repeat in a fresh OS process, like Go's).
const RING_TASKS_CHILD: &str = "--ring-tasks-child";
/// The row key of csp tasks composed with `parallel![...]`, whose last process runs on the
/// calling thread (not a ratio reference; see [`TaskStart::Parallel`]).
const CSP_TASKS_PARALLEL: &str = "csp-tasks-parallel";

// ---------------------------------------------------------------------------------------
// Statistics, cells, rows
// ---------------------------------------------------------------------------------------

/// Median and spread of the repeats of one measurement (seconds per operation, or bytes).
#[derive(Debug, Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &[f64]) -> Stats {
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Stats {
            median: common::median(samples.to_vec()),
            min,
            max,
        }
    }
}

/// One measured value in a table.
#[derive(Debug, Clone)]
enum Cell {
    Value(Stats),
    /// Not measured: the reason (also listed in the notes).
    Missing,
}

impl Cell {
    fn value(&self) -> Option<f64> {
        match self {
            Cell::Value(stats) => Some(stats.median),
            _ => None,
        }
    }
}

/// One implementation's line in a table.
#[derive(Debug, Clone)]
struct Row {
    key: &'static str,
    label: String,
    /// What was counted (loops, round trips, messages, ...), for the table.
    count: String,
    cell: Cell,
    /// For the token ring: bytes per process (resident set size delta / N).
    memory: Option<Cell>,
    /// For the token ring's Go rows: the runtime's own account, `MemStats.Sys` delta / N.
    go_sys: Option<Cell>,
    /// The token ring's N: ratios compare rows of the same N only.
    group: u64,
}

impl Row {
    fn new(key: &'static str, label: impl Into<String>, count: u64, cell: Cell) -> Row {
        Row {
            key,
            label: label.into(),
            count: thousands(count),
            cell,
            memory: None,
            go_sys: None,
            group: 0,
        }
    }
}

/// What the run found missing or worth saying, printed at the end.
#[derive(Debug, Default)]
struct Notes(Vec<String>);

impl Notes {
    fn add(&mut self, note: String) {
        if !self.0.contains(&note) {
            self.0.push(note);
        }
    }

    /// A cell from a measurement, noting why it is missing.
    fn cell(&mut self, what: &str, measured: Result<Stats, String>) -> Cell {
        match measured {
            Ok(stats) => Cell::Value(stats),
            Err(reason) => {
                self.add(format!("{what}: n/a: {reason}"));
                Cell::Missing
            }
        }
    }
}

/// Runs `run` `repeats` times; each returns one sample.
fn measure(repeats: usize, mut run: impl FnMut() -> Result<f64, String>) -> Result<Stats, String> {
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        samples.push(run()?);
    }
    Ok(Stats::of(&samples))
}

/// Like [`measure`], for csp's own measurements: a panic becomes an n/a with its message.
fn measure_csp(repeats: usize, run: impl FnMut() -> Result<f64, String>) -> Result<Stats, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| measure(repeats, run))).unwrap_or_else(
        |payload| {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".to_string());
            Err(format!("panicked: {message}"))
        },
    )
}

fn csp_error(error: impl std::fmt::Display) -> String {
    error.to_string()
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in seconds, in a readable unit.
fn time(seconds: f64) -> String {
    let (value, unit) = if seconds < 1e-6 {
        (seconds * 1e9, "ns")
    } else if seconds < 1e-3 {
        (seconds * 1e6, "us")
    } else if seconds < 1.0 {
        (seconds * 1e3, "ms")
    } else {
        (seconds, "s")
    };
    format!("{} {unit}", significant(value))
}

/// Operations per second, for a time per operation.
fn rate(seconds: f64) -> String {
    let per_second = 1.0 / seconds;
    let (value, unit) = if per_second >= 1e6 {
        (per_second / 1e6, "M/s")
    } else if per_second >= 1e3 {
        (per_second / 1e3, "k/s")
    } else {
        (per_second, "/s")
    };
    format!("{} {unit}", significant(value))
}

fn bytes(value: f64) -> String {
    if value.abs() >= 1024.0 * 1024.0 {
        format!("{} MiB", significant(value / (1024.0 * 1024.0)))
    } else if value.abs() >= 1024.0 {
        format!("{} KiB", significant(value / 1024.0))
    } else {
        format!("{} B", significant(value))
    }
}

/// Three significant digits, about.
fn significant(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn show(cell: &Cell, format: fn(f64) -> String) -> String {
    match cell {
        Cell::Value(stats) => format(stats.median),
        Cell::Missing => "n/a".to_string(),
    }
}

/// "min–max", with the unit once.
fn spread(cell: &Cell, format: fn(f64) -> String, inverted: bool) -> String {
    match cell {
        Cell::Value(stats) => {
            let (low, high) = if inverted {
                (stats.max, stats.min)
            } else {
                (stats.min, stats.max)
            };
            let (low, high) = (format(low), format(high));
            match (low.rsplit_once(' '), high.rsplit_once(' ')) {
                (Some((l, lu)), Some((h, hu))) if lu == hu => format!("{l}–{h} {hu}"),
                _ => format!("{low}–{high}"),
            }
        }
        Cell::Missing => "n/a".to_string(),
    }
}

/// `reference / this`, as a time ratio.
fn ratio(reference: Option<&Cell>, this: &Cell) -> String {
    match (reference, this) {
        (Some(Cell::Value(r)), Cell::Value(t)) => format!("{:.2}x", r.median / t.median),
        _ => "n/a".to_string(),
    }
}

/// A workload's table.
struct Table {
    title: &'static str,
    intro: String,
    /// Shows operations per second (for a time per operation) instead of the time.
    rate_unit: Option<&'static str>,
    /// A column of the median divided by this (commstime: per communication = loop / 4).
    per_part: Option<(&'static str, f64)>,
    /// The row keys of the csp rows that ratio columns compare with.
    references: &'static [(&'static str, &'static str)],
    rows: Vec<Row>,
}

impl Table {
    fn reference(&self, key: &str, group: u64) -> Option<&Cell> {
        self.rows
            .iter()
            .find(|row| row.key == key && row.group == group)
            .map(|row| &row.cell)
    }

    fn reference_memory(&self, key: &str, group: u64) -> Option<&Cell> {
        self.rows
            .iter()
            .find(|row| row.key == key && row.group == group)
            .and_then(|row| row.memory.as_ref())
    }

    fn markdown(&self) -> String {
        let mut out = String::new();
        let ring = self.rows.iter().any(|row| row.memory.is_some());
        let _ = writeln!(out, "## {}\n\n{}\n", self.title, self.intro);
        let mut header = vec!["implementation".to_string()];
        if ring {
            header.push("N".to_string());
        }
        header.push("count".to_string());
        match (self.rate_unit, ring) {
            (Some(unit), _) => {
                header.push(format!("{unit} (median)"));
                header.push("spread".to_string());
                header.push("time per op".to_string());
            }
            (None, true) => {
                header.push("per hop (median)".to_string());
                header.push("spread".to_string());
                header.push("memory per process (RSS)".to_string());
                header.push("Go `MemStats.Sys` / N".to_string());
            }
            (None, false) => {
                header.push("median".to_string());
                header.push("spread".to_string());
            }
        }
        if let Some((label, _)) = self.per_part {
            header.push(label.to_string());
        }
        for (_, label) in self.references {
            header.push(format!("{label} / this (time)"));
            if ring {
                header.push(format!("{label} / this (memory)"));
            }
        }
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
        for row in &self.rows {
            let mut cells = vec![row.label.clone()];
            if ring {
                cells.push(thousands(row.group));
            }
            cells.push(row.count.clone());
            if self.rate_unit.is_some() {
                cells.push(show(&row.cell, rate));
                cells.push(spread(&row.cell, rate, true));
                cells.push(show(&row.cell, time));
            } else {
                cells.push(show(&row.cell, time));
                cells.push(spread(&row.cell, time, false));
            }
            if ring {
                cells.push(
                    row.memory
                        .as_ref()
                        .map_or("-".to_string(), |m| show(m, bytes)),
                );
                cells.push(
                    row.go_sys
                        .as_ref()
                        .map_or("-".to_string(), |m| show(m, bytes)),
                );
            }
            if let Some((_, divisor)) = self.per_part {
                cells.push(match &row.cell {
                    Cell::Value(stats) => time(stats.median / divisor),
                    other => show(other, time),
                });
            }
            for (key, _) in self.references {
                if row.key == *key {
                    cells.push("-".to_string());
                    if ring {
                        cells.push("-".to_string());
                    }
                    continue;
                }
                cells.push(ratio(self.reference(key, row.group), &row.cell));
                if ring {
                    cells.push(match &row.memory {
                        Some(memory) => ratio(self.reference_memory(key, row.group), memory),
                        None => "-".to_string(),
                    });
                }
            }
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }

    fn value(&self, key: &str, group: u64) -> Option<f64> {
        self.reference(key, group).and_then(Cell::value)
    }
}

// ---------------------------------------------------------------------------------------
// Peers: Go, Python
// ---------------------------------------------------------------------------------------

/// The directory cargo builds into (`target/`): `CSP_BENCH_TARGET` (set by bench/run, which
/// runs a copy of this executable), else `CARGO_TARGET_DIR`, else from this executable's path
/// (`target/release/deps/suite-*`).
fn target_dir() -> PathBuf {
    for variable in ["CSP_BENCH_TARGET", "CARGO_TARGET_DIR"] {
        if let Some(dir) = std::env::var_os(variable) {
            return PathBuf::from(dir);
        }
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .filter(|dir| dir.join("release").is_dir())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn peers_dir() -> PathBuf {
    let dir = target_dir().join("bench-peers");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// `go`: `CSP_BENCH_GO` if set (a path; anything else turns the Go peer off), else on `PATH`
/// or where Debian's golang-go puts it.
fn find_go() -> Option<PathBuf> {
    if let Some(go) = std::env::var_os("CSP_BENCH_GO") {
        return Some(PathBuf::from(go)).filter(|go| go.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/lib/go/bin")])
        .map(|dir| dir.join("go"))
        .find(|go| go.is_file())
}

/// Builds the Go peer into `target/bench-peers/go-peer`, once.
fn go_peer() -> Result<&'static Path, String> {
    static PEER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PEER.get_or_init(|| {
        let go = find_go()
            .ok_or("`go` not found (bench/run installs golang-go; CSP_BENCH_GO names one)")?;
        let output = peers_dir().join("go-peer");
        let built = Command::new(&go)
            .args(["build", "-o"])
            .arg(&output)
            .arg(".")
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/go"))
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", go.display()))?;
        if !built.status.success() {
            return Err(format!(
                "go build failed: {}",
                one_line(&String::from_utf8_lossy(&built.stderr))
            ));
        }
        Ok(output)
    })
    .as_deref()
    .map_err(Clone::clone)
}

/// The virtualenv's Python, with PyCSP 0.9.2.
fn pycsp_python() -> Result<PathBuf, String> {
    let python = std::env::var_os("CSP_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("bench-venv/bin/python"));
    if python.is_file() {
        Ok(python)
    } else {
        Err(format!(
            "no PyCSP virtualenv ({} is missing; bench/run makes it)",
            python.display()
        ))
    }
}

fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/peers")
        .join(name)
}

fn one_line(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > 400 {
        format!(
            "...{}",
            chars[chars.len() - 400..].iter().collect::<String>()
        )
    } else {
        text
    }
}

/// Runs a peer once (killed, with its process group, after [`PEER_TIMEOUT`]).
fn run_peer_once(command: &mut Command) -> Result<HashMap<String, f64>, String> {
    let dir = peers_dir();
    let out_path = dir.join(format!("peer-{}.out", std::process::id()));
    let err_path = dir.join(format!("peer-{}.err", std::process::id()));
    let file = |path: &Path| File::create(path).map_err(|e| format!("{}: {e}", path.display()));
    command
        .stdin(Stdio::null())
        .stdout(file(&out_path)?)
        .stderr(file(&err_path)?)
        .process_group(0);
    let mut child = command.spawn().map_err(|e| {
        format!(
            "cannot start {}: {e}",
            command.get_program().to_string_lossy()
        )
    })?;
    let deadline = Instant::now() + PEER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                // The peer's whole process group: it may have started OS processes of its own.
                let _ = Command::new("kill")
                    .args(["-KILL", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "timed out after {} s and was killed",
                    PEER_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    if !status.success() {
        return Err(format!("exited with {status}: {}", one_line(&stderr)));
    }
    let values = common::parse_flat_json(&stdout);
    if values.is_empty() {
        return Err(format!(
            "printed no JSON: {} {}",
            one_line(&stdout),
            one_line(&stderr)
        ));
    }
    Ok(values)
}

/// Runs a peer `repeats` times; the statistics of each key it printed.
fn run_peer(
    repeats: usize,
    mut command: impl FnMut() -> Result<Command, String>,
) -> Result<HashMap<String, Stats>, String> {
    let mut runs = Vec::new();
    for _ in 0..repeats {
        runs.push(run_peer_once(&mut command()?)?);
    }
    Ok(runs[0]
        .keys()
        .map(|key| {
            let samples: Vec<f64> = runs
                .iter()
                .filter_map(|run| run.get(key).copied())
                .collect();
            (key.clone(), Stats::of(&samples))
        })
        .collect())
}

fn key(results: &HashMap<String, Stats>, key: &str) -> Result<Stats, String> {
    results
        .get(key)
        .copied()
        .ok_or_else(|| format!("the peer printed no `{key}`"))
}

/// How Go is scheduled in a row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Procs {
    One,
    Default,
}

/// Runs the Go peer's `workload` `repeats` times.
fn go(repeats: usize, procs: Procs, args: &[String]) -> Result<HashMap<String, Stats>, String> {
    let peer = go_peer()?;
    run_peer(repeats, || {
        let mut command = Command::new(peer);
        command.args(args);
        match procs {
            Procs::One => command.env("GOMAXPROCS", "1"),
            Procs::Default => command.env_remove("GOMAXPROCS"),
        };
        Ok(command)
    })
}

/// The label of a Go row, with the GOMAXPROCS it ran with.
fn go_label(procs: Procs, results: &Result<HashMap<String, Stats>, String>) -> String {
    match (procs, results) {
        (Procs::One, _) => "Go, GOMAXPROCS=1".to_string(),
        (Procs::Default, Ok(r)) => match r.get("gomaxprocs") {
            Some(n) => format!("Go, default GOMAXPROCS (= {})", n.median),
            None => "Go, default GOMAXPROCS".to_string(),
        },
        (Procs::Default, Err(_)) => "Go, default GOMAXPROCS".to_string(),
    }
}

fn args(items: &[&dyn std::fmt::Display]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

/// Runs `peer.py` in the PyCSP virtualenv (or, for `mp_start`, any `python3`).
fn python(
    repeats: usize,
    args: &[String],
    needs_pycsp: bool,
) -> Result<HashMap<String, Stats>, String> {
    let python = match pycsp_python() {
        Ok(python) => python,
        Err(_) if !needs_pycsp => PathBuf::from("python3"),
        Err(reason) => return Err(reason),
    };
    run_peer(repeats, || {
        let mut command = Command::new(&python);
        command.arg(peer_script("pycsp/peer.py")).args(args);
        if std::env::var_os("PYCSP_HOST").is_none() {
            command.env("PYCSP_HOST", "127.0.0.1");
        }
        Ok(command)
    })
}

// ---------------------------------------------------------------------------------------
// Rust peers: crossbeam-channel, flume, kanal (same code, three crates)
// ---------------------------------------------------------------------------------------

/// The commstime, ping-pong and one-way workloads written against a crate whose `bounded(n)`
/// gives a `(Sender, Receiver)` pair with `send(v) -> Result` and `recv() -> Result`.
macro_rules! rust_peer {
    ($module:ident, $krate:ident) => {
        mod $module {
            use std::thread;
            use std::time::Instant;

            /// Seconds per loop. Shutdown: the consumer drops its receiver, and the failed
            /// sends end every thread in turn.
            pub(super) fn commstime(loops: u64) -> f64 {
                let (a_tx, a_rx) = $krate::bounded::<u64>(0);
                let (b_tx, b_rx) = $krate::bounded::<u64>(0);
                let (c_tx, c_rx) = $krate::bounded::<u64>(0);
                let (d_tx, d_rx) = $krate::bounded::<u64>(0);
                let prefix = thread::spawn(move || {
                    if a_tx.send(0).is_err() {
                        return;
                    }
                    while let Ok(v) = b_rx.recv() {
                        if a_tx.send(v).is_err() {
                            return;
                        }
                    }
                });
                let delta = thread::spawn(move || {
                    while let Ok(v) = a_rx.recv() {
                        if d_tx.send(v).is_err() || c_tx.send(v).is_err() {
                            return;
                        }
                    }
                });
                let succ = thread::spawn(move || {
                    while let Ok(v) = c_rx.recv() {
                        if b_tx.send(v + 1).is_err() {
                            return;
                        }
                    }
                });
                d_rx.recv().unwrap(); // warm up: the network is running
                let started = Instant::now();
                for _ in 0..loops {
                    d_rx.recv().unwrap();
                }
                let elapsed = started.elapsed().as_secs_f64();
                drop(d_rx);
                for handle in [prefix, delta, succ] {
                    handle.join().unwrap();
                }
                elapsed / loops as f64
            }

            /// Seconds per round trip.
            pub(super) fn ping_pong(rounds: u64) -> f64 {
                let (ping_tx, ping_rx) = $krate::bounded::<u64>(0);
                let (pong_tx, pong_rx) = $krate::bounded::<u64>(0);
                let echo = thread::spawn(move || {
                    while let Ok(v) = ping_rx.recv() {
                        if pong_tx.send(v).is_err() {
                            return;
                        }
                    }
                });
                ping_tx.send(0).unwrap();
                pong_rx.recv().unwrap();
                let started = Instant::now();
                for n in 0..rounds {
                    ping_tx.send(n).unwrap();
                    pong_rx.recv().unwrap();
                }
                let elapsed = started.elapsed().as_secs_f64();
                drop(ping_tx);
                echo.join().unwrap();
                elapsed / rounds as f64
            }

            /// Seconds per `size`-byte message (each a fresh copy of one buffer) over a
            /// buffered channel.
            pub(super) fn one_way_bytes(messages: u64, capacity: usize, size: usize) -> f64 {
                let (tx, rx) = $krate::bounded::<Vec<u8>>(capacity);
                let source = thread::spawn(move || {
                    let template = vec![7u8; size];
                    for _ in 0..=messages {
                        if tx.send(template.clone()).is_err() {
                            return;
                        }
                    }
                });
                rx.recv().unwrap();
                let started = Instant::now();
                let mut total = 0;
                for _ in 0..messages {
                    total += rx.recv().unwrap().len();
                }
                let elapsed = started.elapsed().as_secs_f64();
                assert_eq!(total, messages as usize * size);
                source.join().unwrap();
                elapsed / messages as f64
            }

            /// Seconds per 8-byte message over a buffered channel.
            pub(super) fn one_way(messages: u64, capacity: usize) -> f64 {
                let (tx, rx) = $krate::bounded::<u64>(capacity);
                let source = thread::spawn(move || {
                    for n in 0..=messages {
                        if tx.send(n).is_err() {
                            return;
                        }
                    }
                });
                rx.recv().unwrap();
                let started = Instant::now();
                let mut sum = 0u64;
                for _ in 0..messages {
                    sum = sum.wrapping_add(rx.recv().unwrap());
                }
                let elapsed = started.elapsed().as_secs_f64();
                assert!(sum > 0);
                source.join().unwrap();
                elapsed / messages as f64
            }
        }
    };
}

rust_peer!(crossbeam, crossbeam_channel);
rust_peer!(flume_peer, flume);
rust_peer!(kanal_peer, kanal);

/// The Rust peers, by row key and label.
type RustPeer = (
    &'static str,
    &'static str,
    fn(u64) -> f64,
    fn(u64) -> f64,
    fn(u64, usize) -> f64,
    fn(u64, usize, usize) -> f64,
);

const RUST_PEERS: [RustPeer; 3] = [
    (
        "crossbeam",
        "crossbeam-channel `bounded(0)`",
        crossbeam::commstime,
        crossbeam::ping_pong,
        crossbeam::one_way,
        crossbeam::one_way_bytes,
    ),
    (
        "flume",
        "flume `bounded(0)`",
        flume_peer::commstime,
        flume_peer::ping_pong,
        flume_peer::one_way,
        flume_peer::one_way_bytes,
    ),
    (
        "kanal",
        "kanal `bounded(0)`",
        kanal_peer::commstime,
        kanal_peer::ping_pong,
        kanal_peer::one_way,
        kanal_peer::one_way_bytes,
    ),
];

// ---------------------------------------------------------------------------------------
// csp processes
// ---------------------------------------------------------------------------------------

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

/// Times `loops` loops after a warm-up one, then poisons the network; seconds per loop.
#[process]
fn consumer(input: Reader<u64>, loops: u64) -> Result<f64, csp::Error> {
    input.read()?;
    let started = Instant::now();
    for _ in 0..loops {
        input.read()?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    input.poison();
    Ok(elapsed / loops as f64)
}

/// Runs `process` in a child OS process if `os`.
fn placed<R>(process: Process<R>, os: bool) -> Result<Process<R>, String>
where
    R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    if os {
        process.os().map_err(csp_error)
    } else {
        Ok(process)
    }
}

fn csp_commstime(loops: u64, os: bool) -> Result<f64, String> {
    let (a, b, c, d) = (
        Channel::named("a"),
        Channel::named("b"),
        Channel::named("c"),
        Channel::named("d"),
    );
    let (_, _, _, per_loop) = parallel![
        placed(prefix(0, b.reader(), a.writer()), os)?,
        placed(delta(a.reader(), c.writer(), d.writer()), os)?,
        placed(succ(c.reader(), b.writer()), os)?,
        placed(consumer(d.reader(), loops), os)?,
    ]
    .run()
    .map_err(csp_error)?;
    per_loop.map_err(csp_error)
}

#[process]
fn echo(input: Reader<u64>, output: Writer<u64>) -> Result<(), csp::Error> {
    loop {
        output.write(input.read()?)?;
    }
}

/// Seconds per round trip, after a warm-up one.
#[process]
fn pinger(output: Writer<u64>, input: Reader<u64>, rounds: u64) -> Result<f64, csp::Error> {
    output.write(0)?;
    input.read()?;
    let started = Instant::now();
    for n in 0..rounds {
        output.write(n)?;
        input.read()?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    output.poison();
    Ok(elapsed / rounds as f64)
}

/// The echo in a child OS process if `os`; the pinger always on a thread of this one, where
/// the channels live.
fn csp_ping_pong(rounds: u64, os: bool) -> Result<f64, String> {
    let (ping, pong) = (Channel::named("ping"), Channel::named("pong"));
    let (per_round, _) = parallel![
        pinger(ping.writer(), pong.reader(), rounds),
        placed(echo(ping.reader(), pong.writer()), os)?,
    ]
    .run()
    .map_err(csp_error)?;
    per_round.map_err(csp_error)
}

#[process]
fn source(output: Writer<u64>, messages: u64) -> Result<(), csp::Error> {
    for n in 0..=messages {
        output.write(n)?;
    }
    Ok(())
}

/// Seconds per message, after a warm-up one.
#[process]
fn sink(input: Reader<u64>, messages: u64) -> Result<f64, csp::Error> {
    input.read()?;
    let started = Instant::now();
    let mut sum = 0u64;
    for _ in 0..messages {
        sum = sum.wrapping_add(input.read()?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(sum > 0);
    Ok(elapsed / messages as f64)
}

/// The source in a child OS process if `os`; the sink on a thread of this one, where the
/// buffered channel lives.
fn csp_one_way(messages: u64, os: bool) -> Result<f64, String> {
    let channel = Channel::buffered(ONEWAY_CAPACITY);
    let (_, per_message) = parallel![
        placed(source(channel.writer(), messages), os)?,
        sink(channel.reader(), messages),
    ]
    .run()
    .map_err(csp_error)?;
    per_message.map_err(csp_error)
}

/// The large-message source: `messages + 1` fresh copies of one `size`-byte buffer.
#[process]
fn source_bytes(output: Writer<ByteBuf>, messages: u64, size: usize) -> Result<(), csp::Error> {
    let template = vec![7u8; size];
    for _ in 0..=messages {
        output.write(ByteBuf::from(template.clone()))?;
    }
    Ok(())
}

/// Seconds per large message, after a warm-up one.
#[process]
fn sink_bytes(input: Reader<ByteBuf>, messages: u64, size: usize) -> Result<f64, csp::Error> {
    input.read()?;
    let started = Instant::now();
    let mut total = 0;
    for _ in 0..messages {
        total += input.read()?.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(total, messages as usize * size);
    Ok(elapsed / messages as f64)
}

#[process]
async fn source_bytes_task(
    output: Writer<ByteBuf>,
    messages: u64,
    size: usize,
) -> Result<(), csp::Error> {
    let template = vec![7u8; size];
    for _ in 0..=messages {
        output.write_async(ByteBuf::from(template.clone())).await?;
    }
    Ok(())
}

#[process]
async fn sink_bytes_task(
    input: Reader<ByteBuf>,
    messages: u64,
    size: usize,
) -> Result<f64, csp::Error> {
    input.read_async().await?;
    let started = Instant::now();
    let mut total = 0;
    for _ in 0..messages {
        total += input.read_async().await?.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(total, messages as usize * size);
    Ok(elapsed / messages as f64)
}

/// Where the large-message source and sink run.
#[derive(Clone, Copy)]
enum Large {
    Threads,
    /// The source in a child OS process.
    Os,
    /// Both spawned as tasks.
    Tasks,
}

fn csp_one_way_bytes(messages: u64, size: usize, placement: Large) -> Result<f64, String> {
    let channel = Channel::buffered(ONEWAY_CAPACITY);
    let per_message = match placement {
        Large::Threads | Large::Os => {
            let source = placed(
                source_bytes(channel.writer(), messages, size),
                matches!(placement, Large::Os),
            )?;
            let sink = sink_bytes(channel.reader(), messages, size);
            drop(channel);
            parallel![source, sink].run().map_err(csp_error)?.1
        }
        Large::Tasks => {
            let source = source_bytes_task(channel.writer(), messages, size).spawn();
            let sink = sink_bytes_task(channel.reader(), messages, size).spawn();
            drop(channel);
            let per_message = sink.join().map_err(csp_error)?;
            join_all(vec![source])?;
            per_message
        }
    };
    per_message.map_err(csp_error)
}

/// A StressedAlt writer: writes its own number until the channel is poisoned.
#[process]
fn alt_writer(output: Writer<u64>, id: u64) -> Result<(), csp::Error> {
    loop {
        output.write(id)?;
    }
}

/// StressedAlt's reader: fair choices over the ten channels until every writer has been
/// heard from (all are running), then `selections` timed ones; seconds per selection.
/// Poisons every channel at the end.
#[process]
fn alt_reader(inputs: Vec<Reader<u64>>, writers: u64, selections: u64) -> Result<f64, csp::Error> {
    let r: &[Reader<u64>; ALT_CHANNELS] = inputs.as_slice().try_into().expect("ten channels");
    let mut alt = Alternation::fair();
    let mut choose = || -> Result<u64, csp::Error> {
        select! {
            &mut alt;
            v = read(r[0]) => v,
            v = read(r[1]) => v,
            v = read(r[2]) => v,
            v = read(r[3]) => v,
            v = read(r[4]) => v,
            v = read(r[5]) => v,
            v = read(r[6]) => v,
            v = read(r[7]) => v,
            v = read(r[8]) => v,
            v = read(r[9]) => v,
        }
        .map_err(Into::into)
    };
    let mut unheard = vec![true; ALT_CHANNELS * writers as usize];
    let mut left = unheard.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while left > 0 && Instant::now() < deadline {
        let id = choose()? as usize;
        if std::mem::take(&mut unheard[id]) {
            left -= 1;
        }
    }
    let mut counts = [0u64; ALT_CHANNELS];
    let started = Instant::now();
    for _ in 0..selections {
        counts[(choose()? / writers) as usize] += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for input in &inputs {
        input.poison();
    }
    assert_eq!(left, 0, "writers not heard from within a minute");
    assert!(counts.iter().all(|&n| n > 0), "a channel was never chosen");
    Ok(elapsed / selections as f64)
}

fn csp_stressed_alt(writers: usize, selections: u64) -> Result<f64, String> {
    let channels: Vec<Channel<u64>> = (0..ALT_CHANNELS).map(|_| Channel::new()).collect();
    let readers = channels.iter().map(Channel::reader).collect();
    let mut writer_processes = Vec::with_capacity(ALT_CHANNELS * writers);
    for (index, channel) in channels.iter().enumerate() {
        for w in 0..writers {
            let id = (index * writers + w) as u64;
            writer_processes.push(alt_writer(channel.writer(), id));
        }
    }
    drop(channels);
    let (per_selection, _) = parallel![
        alt_reader(readers, writers as u64, selections),
        Parallel::of(writer_processes),
    ]
    .run()
    .map_err(csp_error)?;
    per_selection.map_err(csp_error)
}

/// This OS process's resident set size in bytes, from `/proc/self/statm`.
fn resident_bytes() -> f64 {
    static PAGE: OnceLock<f64> = OnceLock::new();
    let page = *PAGE.get_or_init(|| {
        Command::new("getconf")
            .arg("PAGESIZE")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(4096.0)
    });
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * page
}

/// A token ring node. Node 0 starts the token, lets it go round once (every node running),
/// reads the resident set size, then times `rounds` rounds and poisons the ring; it returns
/// (seconds per hop, resident bytes added per node). The others relay the token.
#[process]
fn ring_node(
    index: u64,
    nodes: u64,
    input: Reader<u64>,
    output: Writer<u64>,
    rounds: u64,
    baseline: f64,
) -> Result<Option<(f64, f64)>, csp::Error> {
    if index != 0 {
        loop {
            output.write(input.read()? + 1)?;
        }
    }
    output.write(0)?;
    let mut token = input.read()?;
    let memory = (resident_bytes() - baseline) / nodes as f64;
    let started = Instant::now();
    for _ in 0..rounds {
        output.write(token)?;
        token = input.read()?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(token, (nodes - 1) * (rounds + 1));
    output.poison();
    input.poison();
    Ok(Some((elapsed / (rounds * nodes) as f64, memory)))
}

/// (seconds per hop, bytes per process) for a ring of `nodes` csp processes on threads.
fn csp_ring(nodes: u64, rounds: u64) -> Result<(f64, f64), String> {
    let baseline = resident_bytes();
    let channels: Vec<Channel<u64>> = (0..nodes).map(|_| Channel::new()).collect();
    let processes: Vec<_> = (0..nodes)
        .map(|i| {
            let input = channels[((i + nodes - 1) % nodes) as usize].reader();
            let output = channels[i as usize].writer();
            ring_node(i, nodes, input, output, rounds, baseline)
        })
        .collect();
    drop(channels);
    let results = Parallel::of(processes).run().map_err(csp_error)?;
    match results.into_iter().next() {
        Some(Ok(Some(measured))) => Ok(measured),
        Some(Err(error)) => Err(csp_error(error)),
        _ => Err("node 0 returned nothing".to_string()),
    }
}

#[process]
fn nothing() -> u64 {
    0
}

/// Seconds to start and join one csp process, on a thread or in a child OS process.
fn csp_start(count: u64, os: bool) -> Result<f64, String> {
    let once = || -> Result<(), String> {
        let process = placed(nothing(), os)?;
        process.spawn().join().map(|_| ()).map_err(csp_error)
    };
    once()?; // warm up
    let started = Instant::now();
    for _ in 0..count {
        once()?;
    }
    Ok(started.elapsed().as_secs_f64() / count as f64)
}

// ---------------------------------------------------------------------------------------
// csp lightweight processes: the same workloads as `#[process] async fn`, tasks on csp's
// executor
// ---------------------------------------------------------------------------------------

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

/// As [`consumer`]: seconds per loop, after a warm-up one; poisons the network.
#[process]
async fn consumer_task(input: Reader<u64>, loops: u64) -> Result<f64, csp::Error> {
    input.read_async().await?;
    let started = Instant::now();
    for _ in 0..loops {
        input.read_async().await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    input.poison();
    Ok(elapsed / loops as f64)
}

/// How a network of tasks is started.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TaskStart {
    /// Every process `.spawn()`ed onto the executor; this thread only joins them.
    Executor,
    /// `parallel![...].run()`, which runs its last process on the calling thread (a task run
    /// there is blocked on, not spawned): every communication with it crosses between that
    /// thread and the executor's.
    Parallel,
}

/// Joins every handle; the first failure, if any.
fn join_all<R>(handles: Vec<csp::SpawnHandle<R>>) -> Result<(), String> {
    handles
        .into_iter()
        .try_for_each(|handle| handle.join().map(drop).map_err(csp_error))
}

/// commstime with all four processes as tasks.
fn csp_commstime_tasks(loops: u64, start: TaskStart) -> Result<f64, String> {
    let (a, b, c, d) = (
        Channel::named("a"),
        Channel::named("b"),
        Channel::named("c"),
        Channel::named("d"),
    );
    let (p, dl, s, cons) = (
        prefix_task(0, b.reader(), a.writer()),
        delta_task(a.reader(), c.writer(), d.writer()),
        succ_task(c.reader(), b.writer()),
        consumer_task(d.reader(), loops),
    );
    let per_loop = match start {
        TaskStart::Parallel => parallel![p, dl, s, cons].run().map_err(csp_error)?.3,
        TaskStart::Executor => {
            let others = vec![p.spawn(), dl.spawn(), s.spawn()];
            let per_loop = cons.spawn().join().map_err(csp_error)?;
            join_all(others)?;
            per_loop
        }
    };
    per_loop.map_err(csp_error)
}

#[process]
async fn echo_task(input: Reader<u64>, output: Writer<u64>) -> Result<(), csp::Error> {
    loop {
        output.write_async(input.read_async().await?).await?;
    }
}

/// As [`pinger`]: seconds per round trip, after a warm-up one.
#[process]
async fn pinger_task(
    output: Writer<u64>,
    input: Reader<u64>,
    rounds: u64,
) -> Result<f64, csp::Error> {
    output.write_async(0).await?;
    input.read_async().await?;
    let started = Instant::now();
    for n in 0..rounds {
        output.write_async(n).await?;
        input.read_async().await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    output.poison();
    Ok(elapsed / rounds as f64)
}

/// Ping-pong with both processes as tasks.
fn csp_ping_pong_tasks(rounds: u64, start: TaskStart) -> Result<f64, String> {
    let (ping, pong) = (Channel::named("ping"), Channel::named("pong"));
    let pinger = pinger_task(ping.writer(), pong.reader(), rounds);
    let echo = echo_task(ping.reader(), pong.writer());
    let per_round = match start {
        TaskStart::Parallel => parallel![pinger, echo].run().map_err(csp_error)?.0,
        TaskStart::Executor => {
            let echo = echo.spawn();
            let per_round = pinger.spawn().join().map_err(csp_error)?;
            join_all(vec![echo])?;
            per_round
        }
    };
    per_round.map_err(csp_error)
}

#[process]
async fn source_task(output: Writer<u64>, messages: u64) -> Result<(), csp::Error> {
    for n in 0..=messages {
        output.write_async(n).await?;
    }
    Ok(())
}

/// As [`sink`]: seconds per message, after a warm-up one.
#[process]
async fn sink_task(input: Reader<u64>, messages: u64) -> Result<f64, csp::Error> {
    input.read_async().await?;
    let started = Instant::now();
    let mut sum = 0u64;
    for _ in 0..messages {
        sum = sum.wrapping_add(input.read_async().await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(sum > 0);
    Ok(elapsed / messages as f64)
}

/// One-way throughput with the source and the sink as tasks.
fn csp_one_way_tasks(messages: u64, start: TaskStart) -> Result<f64, String> {
    let channel = Channel::buffered(ONEWAY_CAPACITY);
    let source = source_task(channel.writer(), messages);
    let sink = sink_task(channel.reader(), messages);
    let per_message = match start {
        TaskStart::Parallel => parallel![source, sink].run().map_err(csp_error)?.1,
        TaskStart::Executor => {
            let source = source.spawn();
            let per_message = sink.spawn().join().map_err(csp_error)?;
            join_all(vec![source])?;
            per_message
        }
    };
    per_message.map_err(csp_error)
}

/// A StressedAlt writer task: writes its own number until the channel is poisoned.
#[process]
async fn alt_writer_task(output: Writer<u64>, id: u64) -> Result<(), csp::Error> {
    loop {
        output.write_async(id).await?;
    }
}

/// One fair choice over the ten channels, awaited.
async fn choose_async(
    alt: &mut Alternation,
    r: &[Reader<u64>; ALT_CHANNELS],
) -> Result<u64, csp::Error> {
    select_async! {
        &mut *alt;
        v = read(r[0]) => v,
        v = read(r[1]) => v,
        v = read(r[2]) => v,
        v = read(r[3]) => v,
        v = read(r[4]) => v,
        v = read(r[5]) => v,
        v = read(r[6]) => v,
        v = read(r[7]) => v,
        v = read(r[8]) => v,
        v = read(r[9]) => v,
    }
    .map_err(Into::into)
}

/// As [`alt_reader`], as a task with `select_async!`.
#[process]
async fn alt_reader_task(
    inputs: Vec<Reader<u64>>,
    writers: u64,
    selections: u64,
) -> Result<f64, csp::Error> {
    let r: &[Reader<u64>; ALT_CHANNELS] = inputs.as_slice().try_into().expect("ten channels");
    let mut alt = Alternation::fair();
    let mut unheard = vec![true; ALT_CHANNELS * writers as usize];
    let mut left = unheard.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while left > 0 && Instant::now() < deadline {
        let id = choose_async(&mut alt, r).await? as usize;
        if std::mem::take(&mut unheard[id]) {
            left -= 1;
        }
    }
    let mut counts = [0u64; ALT_CHANNELS];
    let started = Instant::now();
    for _ in 0..selections {
        counts[(choose_async(&mut alt, r).await? / writers) as usize] += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for input in &inputs {
        input.poison();
    }
    assert_eq!(left, 0, "writers not heard from within a minute");
    assert!(counts.iter().all(|&n| n > 0), "a channel was never chosen");
    Ok(elapsed / selections as f64)
}

/// StressedAlt with the reader and every writer as tasks.
fn csp_stressed_alt_tasks(writers: usize, selections: u64) -> Result<f64, String> {
    let channels: Vec<Channel<u64>> = (0..ALT_CHANNELS).map(|_| Channel::new()).collect();
    let readers = channels.iter().map(Channel::reader).collect();
    let mut writer_processes = Vec::with_capacity(ALT_CHANNELS * writers);
    for (index, channel) in channels.iter().enumerate() {
        for w in 0..writers {
            let id = (index * writers + w) as u64;
            writer_processes.push(alt_writer_task(channel.writer(), id));
        }
    }
    drop(channels);
    let (per_selection, _) = parallel![
        alt_reader_task(readers, writers as u64, selections),
        Parallel::of(writer_processes),
    ]
    .run()
    .map_err(csp_error)?;
    per_selection.map_err(csp_error)
}

/// As [`ring_node`], as a task.
#[process]
async fn ring_node_task(
    index: u64,
    nodes: u64,
    input: Reader<u64>,
    output: Writer<u64>,
    rounds: u64,
    baseline: f64,
) -> Result<Option<(f64, f64)>, csp::Error> {
    if index != 0 {
        loop {
            output.write_async(input.read_async().await? + 1).await?;
        }
    }
    output.write_async(0).await?;
    let mut token = input.read_async().await?;
    let memory = (resident_bytes() - baseline) / nodes as f64;
    let started = Instant::now();
    for _ in 0..rounds {
        output.write_async(token).await?;
        token = input.read_async().await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(token, (nodes - 1) * (rounds + 1));
    output.poison();
    input.poison();
    Ok(Some((elapsed / (rounds * nodes) as f64, memory)))
}

/// In the child OS process ([`RING_TASKS_CHILD`]): one ring of `nodes` tasks, every node a
/// task; prints `{"per_hop": seconds, "rss_per_proc": bytes}`.
fn ring_tasks_child(nodes: u64, rounds: u64) -> Result<(), String> {
    // Start the executor first, so that its threads are not counted as the ring's memory.
    nothing_task().spawn().join().map_err(csp_error)?;
    let baseline = resident_bytes();
    let channels: Vec<Channel<u64>> = (0..nodes).map(|_| Channel::new()).collect();
    let processes: Vec<_> = (0..nodes)
        .map(|i| {
            let input = channels[((i + nodes - 1) % nodes) as usize].reader();
            let output = channels[i as usize].writer();
            ring_node_task(i, nodes, input, output, rounds, baseline)
        })
        .collect();
    drop(channels);
    let results = Parallel::of(processes).run().map_err(csp_error)?;
    match results.into_iter().next() {
        Some(Ok(Some((per_hop, memory)))) => {
            println!("{{\"per_hop\": {per_hop:e}, \"rss_per_proc\": {memory:e}}}");
            Ok(())
        }
        Some(Err(error)) => Err(csp_error(error)),
        _ => Err("node 0 returned nothing".to_string()),
    }
}

/// Runs [`ring_tasks_child`] in a fresh OS process (this executable again) `repeats` times,
/// as the Go peer is run: a repeat's memory cannot hide in what an earlier one freed.
fn csp_ring_tasks(
    repeats: usize,
    nodes: u64,
    rounds: u64,
) -> Result<HashMap<String, Stats>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    run_peer(repeats, || {
        let mut command = Command::new(&exe);
        command.args(args(&[&RING_TASKS_CHILD, &nodes, &rounds]));
        Ok(command)
    })
}

#[process]
async fn nothing_task() -> u64 {
    0
}

/// Seconds to start and join one task (`spawn` from this thread, `join`).
fn csp_start_task(count: u64) -> Result<f64, String> {
    let once = || nothing_task().spawn().join().map(|_| ()).map_err(csp_error);
    once()?; // warm up
    let started = Instant::now();
    for _ in 0..count {
        once()?;
    }
    Ok(started.elapsed().as_secs_f64() / count as f64)
}

// ---------------------------------------------------------------------------------------
// The workloads
// ---------------------------------------------------------------------------------------

/// Says on stderr what is being measured (stdout is the Markdown).
fn progress(what: &str) {
    eprintln!("suite: {what}");
}

const REFS_ALL: &[(&str, &str)] = &[
    (CSP_THREADS, "csp threads"),
    (CSP_OS, "csp OS"),
    (CSP_TASKS, "csp tasks"),
];
const REFS_THREADS: &[(&str, &str)] = &[(CSP_THREADS, "csp threads"), (CSP_TASKS, "csp tasks")];

fn commstime(c: &Counts, notes: &mut Notes) -> Table {
    let n = c.repeats;
    let mut rows = Vec::new();
    progress("commstime: csp threads");
    let cell = notes.cell(
        "commstime csp threads",
        measure_csp(n, || csp_commstime(c.commstime_csp, false)),
    );
    rows.push(Row::new(CSP_THREADS, "csp, threads", c.commstime_csp, cell));
    progress("commstime: csp OS processes");
    let cell = notes.cell(
        "commstime csp OS processes",
        measure_csp(n, || csp_commstime(c.commstime_csp_os, true)),
    );
    rows.push(Row::new(
        CSP_OS,
        "csp, each process `.os()`",
        c.commstime_csp_os,
        cell,
    ));
    progress("commstime: csp tasks");
    let cell = notes.cell(
        "commstime csp tasks",
        measure_csp(n, || {
            csp_commstime_tasks(c.commstime_tasks, TaskStart::Executor)
        }),
    );
    rows.push(Row::new(
        CSP_TASKS,
        "csp, each process a task (`async fn`), all spawned",
        c.commstime_tasks,
        cell,
    ));
    let cell = notes.cell(
        "commstime csp tasks in parallel!",
        measure_csp(n, || {
            csp_commstime_tasks(c.commstime_tasks_parallel, TaskStart::Parallel)
        }),
    );
    rows.push(Row::new(
        CSP_TASKS_PARALLEL,
        "csp, each process a task, `parallel![...].run()` (consumer on the calling thread)",
        c.commstime_tasks_parallel,
        cell,
    ));
    for procs in [Procs::One, Procs::Default] {
        progress(&format!("commstime: Go {procs:?}"));
        let results = go(n, procs, &args(&[&"commstime", &c.commstime_go]));
        let label = go_label(procs, &results);
        let cell = notes.cell(
            &format!("commstime {label}"),
            results.and_then(|r| key(&r, "per_loop")),
        );
        rows.push(Row::new(
            if procs == Procs::One { "go1" } else { "go" },
            label,
            c.commstime_go,
            cell,
        ));
    }
    for (key_name, label, run, _, _, _) in RUST_PEERS {
        progress(&format!("commstime: {key_name}"));
        let cell = notes.cell(label, measure(n, || Ok(run(c.commstime_rust))));
        rows.push(Row::new(key_name, label, c.commstime_rust, cell));
    }
    for (kind, key_name, count) in [
        ("process", "pycsp", c.commstime_pycsp),
        ("multiprocess", "pycsp-mp", c.commstime_pycsp_mp),
    ] {
        progress(&format!("commstime: PyCSP @{kind}"));
        let label = format!("PyCSP 0.9.2 `@{kind}`");
        let results = python(n, &args(&[&"commstime", &kind, &count]), true);
        let cell = notes.cell(
            &format!("commstime {label}"),
            results.and_then(|r| key(&r, "per_loop")),
        );
        rows.push(Row::new(key_name, label, count, cell));
    }
    Table {
        title: "commstime",
        intro: "prefix(0) -> delta (sequential: consumer, then succ) -> succ -> prefix, delta \
                also feeding the consumer; all channels rendezvous. Time per loop; a loop is 4 \
                communications. `count` is loops per repeat (after one warm-up loop). csp `.os()`: \
                each of the four processes in its own child OS process, the channels homed in \
                the parent. csp tasks: the four as `#[process] async fn`, each `.spawn()`ed onto \
                csp's executor (one thread per CPU), this thread only joining them; the \
                `parallel!` row runs the same four as `parallel![...].run()`, which runs the \
                last, the consumer, on the calling thread. Go runs goroutines; the Rust crates \
                run one OS thread per process."
            .to_string(),
        rate_unit: None,
        per_part: Some(("per communication", 4.0)),
        references: REFS_ALL,
        rows,
    }
}

fn ping_pong(c: &Counts, notes: &mut Notes) -> Table {
    let n = c.repeats;
    let mut rows = Vec::new();
    progress("ping-pong: csp");
    let cell = notes.cell(
        "ping-pong csp threads",
        measure_csp(n, || csp_ping_pong(c.pingpong_csp, false)),
    );
    rows.push(Row::new(CSP_THREADS, "csp, threads", c.pingpong_csp, cell));
    let cell = notes.cell(
        "ping-pong csp OS",
        measure_csp(n, || csp_ping_pong(c.pingpong_csp_os, true)),
    );
    rows.push(Row::new(
        CSP_OS,
        "csp, echo `.os()`",
        c.pingpong_csp_os,
        cell,
    ));
    let cell = notes.cell(
        "ping-pong csp tasks",
        measure_csp(n, || {
            csp_ping_pong_tasks(c.pingpong_tasks, TaskStart::Executor)
        }),
    );
    rows.push(Row::new(
        CSP_TASKS,
        "csp, both processes tasks (`async fn`), both spawned",
        c.pingpong_tasks,
        cell,
    ));
    let cell = notes.cell(
        "ping-pong csp tasks in parallel!",
        measure_csp(n, || {
            csp_ping_pong_tasks(c.pingpong_tasks_parallel, TaskStart::Parallel)
        }),
    );
    rows.push(Row::new(
        CSP_TASKS_PARALLEL,
        "csp, both processes tasks, `parallel![...].run()` (echo on the calling thread)",
        c.pingpong_tasks_parallel,
        cell,
    ));
    for procs in [Procs::One, Procs::Default] {
        progress(&format!("ping-pong: Go {procs:?}"));
        let results = go(n, procs, &args(&[&"pingpong", &c.pingpong_go]));
        let label = go_label(procs, &results);
        let cell = notes.cell(
            &format!("ping-pong {label}"),
            results.and_then(|r| key(&r, "round_trip")),
        );
        rows.push(Row::new(
            if procs == Procs::One { "go1" } else { "go" },
            label,
            c.pingpong_go,
            cell,
        ));
    }
    for (key_name, label, _, run, _, _) in RUST_PEERS {
        progress(&format!("ping-pong: {key_name}"));
        let cell = notes.cell(label, measure(n, || Ok(run(c.pingpong_rust))));
        rows.push(Row::new(key_name, label, c.pingpong_rust, cell));
    }
    Table {
        title: "ping-pong",
        intro: "Two processes, two rendezvous channels: one writes a `u64` and reads it back. \
                Time per round trip (`count` round trips per repeat). csp `.os()`: the echo in a \
                child OS process, the pinger on a thread of the parent, where the channels live. \
                csp tasks: both `async fn`, both `.spawn()`ed onto the executor; the \
                `parallel!` row: `parallel![pinger, echo].run()`, the echo on the calling thread."
            .to_string(),
        rate_unit: None,
        per_part: None,
        references: REFS_ALL,
        rows,
    }
}

fn one_way(c: &Counts, notes: &mut Notes) -> Table {
    let n = c.repeats;
    let mut rows = Vec::new();
    progress("one-way: csp");
    let cell = notes.cell(
        "one-way csp threads",
        measure_csp(n, || csp_one_way(c.oneway_csp, false)),
    );
    rows.push(Row::new(CSP_THREADS, "csp, threads", c.oneway_csp, cell));
    let cell = notes.cell(
        "one-way csp OS",
        measure_csp(n, || csp_one_way(c.oneway_csp_os, true)),
    );
    rows.push(Row::new(
        CSP_OS,
        "csp, source `.os()`",
        c.oneway_csp_os,
        cell,
    ));
    let cell = notes.cell(
        "one-way csp tasks",
        measure_csp(n, || csp_one_way_tasks(c.oneway_tasks, TaskStart::Executor)),
    );
    rows.push(Row::new(
        CSP_TASKS,
        "csp, source and sink tasks (`async fn`), both spawned",
        c.oneway_tasks,
        cell,
    ));
    let cell = notes.cell(
        "one-way csp tasks in parallel!",
        measure_csp(n, || csp_one_way_tasks(c.oneway_tasks, TaskStart::Parallel)),
    );
    rows.push(Row::new(
        CSP_TASKS_PARALLEL,
        "csp, source and sink tasks, `parallel![...].run()` (sink on the calling thread)",
        c.oneway_tasks,
        cell,
    ));
    for procs in [Procs::One, Procs::Default] {
        progress(&format!("one-way: Go {procs:?}"));
        let results = go(
            n,
            procs,
            &args(&[&"oneway", &c.oneway_go, &ONEWAY_CAPACITY]),
        );
        let label = go_label(procs, &results);
        let cell = notes.cell(
            &format!("one-way {label}"),
            results.and_then(|r| key(&r, "per_message")),
        );
        rows.push(Row::new(
            if procs == Procs::One { "go1" } else { "go" },
            label,
            c.oneway_go,
            cell,
        ));
    }
    for (key_name, label, _, _, run, _) in RUST_PEERS {
        progress(&format!("one-way: {key_name}"));
        let label = label.replace("bounded(0)", &format!("bounded({ONEWAY_CAPACITY})"));
        let cell = notes.cell(
            &label,
            measure(n, || Ok(run(c.oneway_rust, ONEWAY_CAPACITY))),
        );
        rows.push(Row::new(key_name, label, c.oneway_rust, cell));
    }
    Table {
        title: "one-way throughput, 8-byte messages",
        intro: format!(
            "A source writes `u64`s into a channel buffered for {ONEWAY_CAPACITY}; a sink reads \
             them. Messages per second (`count` messages per repeat). csp `.os()`: the source in \
             a child OS process, the sink on a thread of the parent, where the channel lives. \
             csp tasks: both `async fn`, both `.spawn()`ed onto the executor; the `parallel!` \
             row: `parallel![source, sink].run()`, the sink on the calling thread."
        ),
        rate_unit: Some("messages/s"),
        per_part: None,
        references: REFS_ALL,
        rows,
    }
}

fn one_way_64k(c: &Counts, notes: &mut Notes) -> Table {
    one_way_large(c, notes, 0)
}

fn one_way_1m(c: &Counts, notes: &mut Notes) -> Table {
    one_way_large(c, notes, 1)
}

/// One-way throughput with large messages: `c.oneway_large[which]`.
fn one_way_large(c: &Counts, notes: &mut Notes, which: usize) -> Table {
    let n = c.repeats;
    let (size, messages, messages_os) = c.oneway_large[which];
    let shown = if size >= 1 << 20 {
        format!("{} MiB", size >> 20)
    } else {
        format!("{} KiB", size >> 10)
    };
    let mut rows = Vec::new();
    for (key_name, label, placement, count) in [
        (CSP_THREADS, "csp, threads", Large::Threads, messages),
        (CSP_OS, "csp, source `.os()`", Large::Os, messages_os),
        (
            CSP_TASKS,
            "csp, source and sink tasks (`async fn`), both spawned",
            Large::Tasks,
            messages,
        ),
    ] {
        progress(&format!("one-way {shown}: {label}"));
        let cell = notes.cell(
            &format!("one-way {shown} {label}"),
            measure_csp(n, || csp_one_way_bytes(count, size, placement)),
        );
        rows.push(Row::new(key_name, label, count, cell));
    }
    for procs in [Procs::One, Procs::Default] {
        progress(&format!("one-way {shown}: Go {procs:?}"));
        let results = go(
            n,
            procs,
            &args(&[&"onewaybytes", &messages, &ONEWAY_CAPACITY, &size]),
        );
        let label = go_label(procs, &results);
        let cell = notes.cell(
            &format!("one-way {shown} {label}"),
            results.and_then(|r| key(&r, "per_message")),
        );
        rows.push(Row::new(
            if procs == Procs::One { "go1" } else { "go" },
            label,
            messages,
            cell,
        ));
    }
    for (key_name, label, _, _, _, run) in RUST_PEERS {
        progress(&format!("one-way {shown}: {key_name}"));
        let label = label.replace("bounded(0)", &format!("bounded({ONEWAY_CAPACITY})"));
        let cell = notes.cell(
            &format!("one-way {shown} {label}"),
            measure(n, || Ok(run(messages, ONEWAY_CAPACITY, size))),
        );
        rows.push(Row::new(key_name, label, messages, cell));
    }
    Table {
        title: if which == 0 {
            "one-way throughput, 64 KiB messages"
        } else {
            "one-way throughput, 1 MiB messages"
        },
        intro: format!(
            "As the 8-byte one-way workload, with {shown} messages: the source sends a fresh \
             copy of one buffer each time (csp: a `ByteBuf`, the Rust crates a `Vec<u8>`, Go a \
             `[]byte`), through a channel buffered for {ONEWAY_CAPACITY}; the sink reads them \
             and drops them. Within one OS process a message moves by pointer, so these rows \
             measure the copy, the allocation and the channel; across OS processes (csp \
             `.os()`) the bytes cross the shared-memory ring. The cross-process section below \
             has the same sizes against a raw Unix socket and Python. Where a source runs \
             ahead and fills the buffer before the sink drains it (tasks on one pool thread do), \
             glibc gives the freed heap back to the OS and faults it in again on every burst: \
             64 KiB between tasks took 29 us per message so and 0.73 us with \
             `MALLOC_TRIM_THRESHOLD_=1000000000` (the run below uses glibc's defaults)."
        ),
        rate_unit: Some("messages/s"),
        per_part: None,
        references: REFS_ALL,
        rows,
    }
}

fn stressed_alt(c: &Counts, notes: &mut Notes) -> Table {
    let n = c.repeats;
    let mut rows = Vec::new();
    progress(&format!(
        "StressedAlt: csp, {} writer threads",
        ALT_CHANNELS * c.alt_writers_csp
    ));
    let cell = notes.cell(
        "StressedAlt csp threads",
        measure_csp(n, || {
            csp_stressed_alt(c.alt_writers_csp, c.alt_selections_csp)
        }),
    );
    rows.push(Row::new(
        CSP_THREADS,
        format!(
            "csp, threads, `select!` fair, {} writers per channel ({} threads)",
            thousands(c.alt_writers_csp as u64),
            thousands((ALT_CHANNELS * c.alt_writers_csp + 1) as u64)
        ),
        c.alt_selections_csp,
        cell,
    ));
    progress(&format!(
        "StressedAlt: csp, {} writer tasks",
        ALT_CHANNELS * c.alt_writers_tasks
    ));
    let cell = notes.cell(
        "StressedAlt csp tasks",
        measure_csp(n, || {
            csp_stressed_alt_tasks(c.alt_writers_tasks, c.alt_selections_tasks)
        }),
    );
    rows.push(Row::new(
        CSP_TASKS,
        format!(
            "csp, tasks, `select_async!` fair, {} writers per channel ({} tasks)",
            thousands(c.alt_writers_tasks as u64),
            thousands((ALT_CHANNELS * c.alt_writers_tasks + 1) as u64)
        ),
        c.alt_selections_tasks,
        cell,
    ));
    for procs in [Procs::One, Procs::Default] {
        progress(&format!("StressedAlt: Go {procs:?}"));
        let results = go(
            n,
            procs,
            &args(&[
                &"stressedalt",
                &ALT_CHANNELS,
                &c.alt_writers_go,
                &c.alt_selections_go,
            ]),
        );
        let label = go_label(procs, &results);
        let writers = thousands(c.alt_writers_go as u64);
        for (suffix, json_key, row_key) in [
            (
                "10-case `select`",
                "select_per_op",
                if procs == Procs::One { "go1" } else { "go" },
            ),
            (
                "`reflect.Select`",
                "reflect_per_op",
                if procs == Procs::One {
                    "go1-reflect"
                } else {
                    "go-reflect"
                },
            ),
        ] {
            let label = format!("{label}, {suffix}, {writers} writers per channel");
            let cell = notes.cell(
                &format!("StressedAlt {label}"),
                results.clone().and_then(|r| key(&r, json_key)),
            );
            rows.push(Row::new(row_key, label, c.alt_selections_go, cell));
        }
    }
    if c.alt_writers_csp != c.alt_writers_go {
        notes.add(format!(
            "StressedAlt: csp on threads ran {} writers per channel ({} OS threads), Go {} \
             goroutines per channel.",
            c.alt_writers_csp,
            ALT_CHANNELS * c.alt_writers_csp,
            c.alt_writers_go
        ));
    }
    Table {
        title: "StressedAlt",
        intro: format!(
            "One reader chooses among {ALT_CHANNELS} rendezvous channels, each written by many \
             writers that write forever (csp threads: one OS thread per writer; csp tasks: \
             one task per writer and for the reader; Go: goroutines). \
             Selections per second (`count` selections per repeat, after a warm-up that lasts \
             until every writer has been heard from)."
        ),
        rate_unit: Some("selections/s"),
        per_part: None,
        references: REFS_THREADS,
        rows,
    }
}

fn token_ring(c: &Counts, notes: &mut Notes) -> Table {
    let n = c.repeats;
    let mut rows = Vec::new();
    progress("token ring: csp threads");
    let mut hops = Vec::new();
    let mut memory = Vec::new();
    let measured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..n {
            let (hop, bytes) = csp_ring(RING_CSP_THREADS, c.ring_csp_rounds)?;
            hops.push(hop);
            memory.push(bytes);
        }
        Ok::<_, String>(())
    }))
    .unwrap_or_else(|_| Err("panicked".to_string()));
    let (time_cell, memory_cell) = match measured {
        Ok(()) => (
            Cell::Value(Stats::of(&hops)),
            Cell::Value(Stats::of(&memory)),
        ),
        Err(reason) => {
            let cell = notes.cell("token ring csp threads", Err(reason));
            (cell.clone(), cell)
        }
    };
    let mut row = Row::new(
        CSP_THREADS,
        "csp, threads",
        c.ring_csp_rounds * RING_CSP_THREADS,
        time_cell,
    );
    row.group = RING_CSP_THREADS;
    row.memory = Some(memory_cell);
    row.count = format!("{} hops", row.count);
    rows.push(row);
    for (nodes, rounds) in c.ring_go {
        progress(&format!("token ring: csp, {nodes} tasks"));
        let repeats = if nodes >= 1_000_000 { n.min(3) } else { n };
        let results = csp_ring_tasks(repeats, nodes, rounds);
        let what = format!("token ring csp tasks, N = {nodes}");
        let mut row = Row::new(
            CSP_TASKS,
            "csp, tasks (`async fn`)",
            rounds * nodes,
            notes.cell(&what, results.clone().and_then(|r| key(&r, "per_hop"))),
        );
        row.count = format!("{} hops", row.count);
        row.group = nodes;
        row.memory = Some(notes.cell(&what, results.and_then(|r| key(&r, "rss_per_proc"))));
        rows.push(row);
    }
    for (nodes, rounds) in c.ring_go {
        progress(&format!("token ring: Go, {nodes} goroutines"));
        let repeats = if nodes >= 1_000_000 { n.min(3) } else { n };
        let results = go(repeats, Procs::Default, &args(&[&"ring", &nodes, &rounds]));
        let label = go_label(Procs::Default, &results);
        let what = format!("token ring {label}, N = {nodes}");
        let mut row = Row::new(
            "go",
            label,
            rounds * nodes,
            notes.cell(&what, results.clone().and_then(|r| key(&r, "per_hop"))),
        );
        row.count = format!("{} hops", row.count);
        row.group = nodes;
        row.memory = Some(notes.cell(&what, results.clone().and_then(|r| key(&r, "rss_per_proc"))));
        row.go_sys = Some(notes.cell(&what, results.and_then(|r| key(&r, "sys_per_proc"))));
        rows.push(row);
    }
    rows.sort_by_key(|row| row.group);
    Table {
        title: "token ring",
        intro: format!(
            "N processes in a ring of rendezvous channels pass one token round; one round warms \
             up, then `count` hops are timed. Time per hop; memory per process = growth of the \
             resident set size (`/proc/self/statm`) from before the ring was built to after \
             the first round, / N. For Go also the runtime's own `MemStats.Sys` growth / N \
             (it grows in large steps: at N = 1,000 it may not grow at all). csp on threads \
             runs N = {} only (one OS thread per process), in this OS process. csp tasks: \
             every node a task, the same `count` as Go; like Go, each repeat runs in a fresh \
             OS process (this executable, `{RING_TASKS_CHILD} N ROUNDS`), and with N = \
             1,000,000 both run {} repeats. Ratios compare rows of the same N.",
            thousands(RING_CSP_THREADS),
            c.repeats.min(3)
        ),
        rate_unit: None,
        per_part: None,
        references: REFS_THREADS,
        rows,
    }
}

fn process_start(c: &Counts, notes: &mut Notes) -> Table {
    let n = c.repeats;
    let mut rows = Vec::new();
    progress("process start: csp");
    let cell = notes.cell(
        "start csp thread",
        measure_csp(n, || csp_start(c.start_csp, false)),
    );
    rows.push(Row::new(
        CSP_THREADS,
        "csp process on a thread (`spawn`, `join`)",
        c.start_csp,
        cell,
    ));
    let cell = notes.cell(
        "start csp OS",
        measure_csp(n, || csp_start(c.start_csp_os, true)),
    );
    rows.push(Row::new(
        CSP_OS,
        "csp process `.os()` (`spawn`, `join`)",
        c.start_csp_os,
        cell,
    ));
    progress("process start: csp task");
    let cell = notes.cell(
        "start csp task",
        measure_csp(n, || csp_start_task(c.start_tasks)),
    );
    rows.push(Row::new(
        CSP_TASKS,
        "csp task (`async fn`; `spawn` from a thread, `join`)",
        c.start_tasks,
        cell,
    ));
    for procs in [Procs::One, Procs::Default] {
        progress(&format!("process start: Go {procs:?}"));
        let results = go(n, procs, &args(&[&"start", &c.start_go]));
        let label = format!("{}, a goroutine", go_label(procs, &results));
        let cell = notes.cell(
            &format!("start {label}"),
            results.and_then(|r| key(&r, "per_start")),
        );
        rows.push(Row::new(
            if procs == Procs::One { "go1" } else { "go" },
            label,
            c.start_go,
            cell,
        ));
    }
    progress("process start: Python multiprocessing");
    let label = "Python `multiprocessing.Process` (spawn)";
    let results = python(n, &args(&[&"mp_start", &c.start_python]), false);
    let cell = notes.cell(label, results.and_then(|r| key(&r, "per_start")));
    rows.push(Row::new("mp", label, c.start_python, cell));
    Table {
        title: "process start",
        intro: "Start one process that does nothing and wait for it to end, `count` times in a \
                row, after one warm-up; time per start and join."
            .to_string(),
        rate_unit: None,
        per_part: None,
        references: REFS_ALL,
        rows,
    }
}

// ---------------------------------------------------------------------------------------
// Targets and main
// ---------------------------------------------------------------------------------------

/// A target: a time ratio csp / peer (`None`: not measured) that must be at most `bound`.
fn target_row(out: &mut String, what: &str, measured: Option<f64>, bound: f64) {
    let (value, verdict) = match measured {
        Some(ratio) => (
            format!("{ratio:.3}x"),
            if ratio <= bound { "met" } else { "NOT met" },
        ),
        None => ("n/a".to_string(), "not measured (see notes)"),
    };
    let _ = writeln!(out, "| {what} | at most {bound}x | {value} | {verdict} |");
}

fn targets(tables: &HashMap<&'static str, Table>) -> String {
    let cell = |table: &str, key: &str, group: u64, memory: bool| {
        let table = tables.get(table)?;
        if memory {
            table.reference_memory(key, group)
        } else {
            table.reference(key, group)
        }
    };
    // csp / peer, for the rows `csp` and `peer` of the same N (`group`).
    let target = |table: &str, csp: &str, peer: &str, group: u64, memory: bool| match (
        cell(table, csp, group, memory),
        cell(table, peer, group, memory),
    ) {
        (Some(Cell::Value(c)), Some(Cell::Value(p))) => Some(c.median / p.median),
        _ => None,
    };
    let value =
        |table: &str, key: &str, group: u64| tables.get(table).and_then(|t| t.value(key, group));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Targets\n\nEach as a time ratio csp / peer from the tables above (below 1: csp is \
         faster; a rate target \"at least kx the peer's rate\" is a time ratio of at most \
         1/k).\n"
    );
    let _ = writeln!(
        out,
        "| target | bound | measured | verdict |\n|---|---|---|---|"
    );
    let rows = [
        (
            "commstime: csp tasks / Go GOMAXPROCS=1",
            target("commstime", CSP_TASKS, "go1", 0, false),
            0.5,
        ),
        (
            "commstime: csp threads / kanal",
            target("commstime", CSP_THREADS, "kanal", 0, false),
            1.0,
        ),
        (
            "commstime: csp threads / crossbeam-channel",
            target("commstime", CSP_THREADS, "crossbeam", 0, false),
            0.1,
        ),
        (
            "commstime: csp OS processes / PyCSP `@multiprocess`",
            target("commstime", CSP_OS, "pycsp-mp", 0, false),
            0.05,
        ),
        (
            "token ring N = 100,000: csp tasks / Go, time per hop",
            target("token_ring", CSP_TASKS, "go", 100_000, false),
            0.5,
        ),
        (
            "token ring N = 100,000: csp tasks / Go, memory per process",
            target("token_ring", CSP_TASKS, "go", 100_000, true),
            0.25,
        ),
        (
            "StressedAlt: csp threads / Go (default GOMAXPROCS, 10-case `select`), time per \
             selection",
            target("stressed_alt", CSP_THREADS, "go", 0, false),
            0.5,
        ),
        (
            "StressedAlt: csp tasks / Go (default GOMAXPROCS, 10-case `select`), time per \
             selection",
            target("stressed_alt", CSP_TASKS, "go", 0, false),
            0.5,
        ),
    ];
    for (what, measured, bound) in rows {
        target_row(&mut out, what, measured, bound);
    }
    let one_way = value("one_way", CSP_OS, 0);
    let _ = writeln!(
        out,
        "| cross-process one-way, 8 bytes: csp `.os()` messages/s | at least 10 M/s | {} | {} |",
        one_way.map_or("n/a".to_string(), rate),
        match one_way {
            Some(seconds) if 1.0 / seconds >= 10e6 => "met",
            Some(_) => "NOT met",
            None => "not measured (see notes)",
        }
    );
    out
}

type Workload = fn(&Counts, &mut Notes) -> Table;

#[csp::main]
fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let quick = arguments.iter().any(|a| a == "--quick")
        || std::env::var_os("CSP_BENCH_QUICK").is_some_and(|v| v != "0");
    let only: Option<Vec<String>> = arguments
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| arguments.get(i + 1))
        .map(|list| list.split(',').map(str::to_string).collect());
    if let Some(i) = arguments.iter().position(|a| a == RING_TASKS_CHILD) {
        let number = |k: usize| -> u64 {
            arguments
                .get(i + k)
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("usage: suite {RING_TASKS_CHILD} NODES ROUNDS"))
        };
        if let Err(reason) = ring_tasks_child(number(1), number(2)) {
            eprintln!("suite {RING_TASKS_CHILD}: {reason}");
            std::process::exit(1);
        }
        return;
    }
    let counts = if quick { QUICK } else { FULL };
    let workloads: [(&'static str, Workload); 8] = [
        ("commstime", commstime),
        ("ping_pong", ping_pong),
        ("one_way", one_way),
        ("one_way_64k", one_way_64k),
        ("one_way_1m", one_way_1m),
        ("stressed_alt", stressed_alt),
        ("token_ring", token_ring),
        ("process_start", process_start),
    ];
    let started = Instant::now();
    let mut notes = Notes::default();
    let mut tables = HashMap::new();
    println!(
        "{} repeats of each measurement{}; each cell is the median, the spread is min–max over \
         the repeats. **Ratio columns are time ratios, csp / this row: below 1.00x means csp is \
         faster** (for rates, this row's rate / csp's rate, the same number). Every peer ran \
         in this same run.\n",
        counts.repeats,
        if quick { " (`--quick` counts)" } else { "" }
    );
    for (name, workload) in workloads {
        if only
            .as_ref()
            .is_some_and(|only| !only.iter().any(|o| o == name))
        {
            continue;
        }
        let table = workload(&counts, &mut notes);
        println!("{}", table.markdown());
        tables.insert(name, table);
    }
    if only.is_none() {
        println!("{}", targets(&tables));
    }
    println!("## Notes\n");
    println!(
        "- The whole suite took {:.0} s; quick counts: {quick}.",
        started.elapsed().as_secs_f64()
    );
    for note in &notes.0 {
        println!("- {note}");
    }
}
