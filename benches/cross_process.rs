//! Cross-process round trip and one-way throughput, side by side in one run with a raw
//! Unix-socket ping-pong written for this benchmark and Python multiprocessing's Pipe and
//! Queue doing the same work. Prints a Markdown table of medians and ratios.
//!
//! Run: `cargo bench --bench cross_process` (needs `python3`). To profile one case, run
//! only csp's `ByteBuf` form of it, many times: `CSP_PROFILE=round_trip/65536 cargo bench
//! --bench cross_process` (`one_way` or `round_trip`, then the size in bytes;
//! `CSP_PROFILE_TYPE=vec` for the `Vec<u8>` form, `CSP_PROFILE_BUFFER=256` for a buffered
//! channel, `CSP_PROFILE_COUNT` for the number of operations).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Instant;

use common::{REPEATS, median, micros};
use csp::prelude::*;
use serde_bytes::ByteBuf;

/// The capacity of the buffered channel of the second one-way rows.
const BUFFERED: usize = 256;

/// (message size, round trips or messages per measurement)
const SIZES: [(usize, u32); 3] = [(8, 2000), (64 << 10, 300), (1 << 20, 40)];

#[process]
fn echo(input: Reader<Vec<u8>>, output: Writer<Vec<u8>>) -> Result<(), csp::Error> {
    loop {
        output.write(input.read()?)?;
    }
}

#[process]
fn echo_bytes(input: Reader<ByteBuf>, output: Writer<ByteBuf>) -> Result<(), csp::Error> {
    loop {
        output.write(input.read()?)?;
    }
}

#[process]
fn source_bytes(output: Writer<ByteBuf>, size: usize, count: u32) -> Result<(), csp::Error> {
    for _ in 0..count {
        output.write(ByteBuf::from(vec![7u8; size]))?;
    }
    Ok(())
}

#[process]
fn source(output: Writer<Vec<u8>>, size: usize, count: u32) -> Result<(), csp::Error> {
    for _ in 0..count {
        output.write(vec![7u8; size])?;
    }
    Ok(())
}

fn read_frame(stream: &mut UnixStream, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header)?;
    buffer.resize(u32::from_le_bytes(header) as usize, 0);
    stream.read_exact(buffer)
}

fn write_frame(stream: &mut UnixStream, payload: &[u8]) -> std::io::Result<()> {
    stream.write_all(&(payload.len() as u32).to_le_bytes())?;
    stream.write_all(payload)
}

/// The raw peer: connects to `path` and echoes `count` frames (or sends them, one way).
#[process]
fn raw_peer(path: String, size: usize, count: u32, one_way: bool) -> Result<(), String> {
    let mut stream = UnixStream::connect(&path).map_err(|e| e.to_string())?;
    let mut buffer = Vec::new();
    if one_way {
        let payload = vec![7u8; size];
        for _ in 0..count {
            write_frame(&mut stream, &payload).map_err(|e| e.to_string())?;
        }
    } else {
        for _ in 0..count {
            read_frame(&mut stream, &mut buffer).map_err(|e| e.to_string())?;
            write_frame(&mut stream, &buffer).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// A payload type and the processes that echo and send it.
trait Payload: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static {
    fn make(size: usize) -> Self;
    fn echo(input: Reader<Self>, output: Writer<Self>) -> Process<Result<(), csp::Error>>;
    fn source(output: Writer<Self>, size: usize, count: u32) -> Process<Result<(), csp::Error>>;
}

impl Payload for Vec<u8> {
    fn make(size: usize) -> Self {
        vec![7u8; size]
    }
    fn echo(input: Reader<Self>, output: Writer<Self>) -> Process<Result<(), csp::Error>> {
        echo(input, output)
    }
    fn source(output: Writer<Self>, size: usize, count: u32) -> Process<Result<(), csp::Error>> {
        source(output, size, count)
    }
}

impl Payload for ByteBuf {
    fn make(size: usize) -> Self {
        ByteBuf::from(vec![7u8; size])
    }
    fn echo(input: Reader<Self>, output: Writer<Self>) -> Process<Result<(), csp::Error>> {
        echo_bytes(input, output)
    }
    fn source(output: Writer<Self>, size: usize, count: u32) -> Process<Result<(), csp::Error>> {
        source_bytes(output, size, count)
    }
}

/// Seconds per operation for csp across OS processes, over channels buffering `capacity`
/// values (0: rendezvous).
fn csp_run_buffered<P: Payload>(size: usize, count: u32, one_way: bool, capacity: usize) -> f64 {
    let channel = || {
        if capacity == 0 {
            Channel::<P>::new()
        } else {
            Channel::<P>::buffered(capacity)
        }
    };
    let (to_child, from_child) = (channel(), channel());
    let (writer, reader) = (to_child.writer(), from_child.reader());
    let child = if one_way {
        P::source(from_child.writer(), size, count + 1)
            .os()
            .unwrap()
            .spawn()
    } else {
        P::echo(to_child.reader(), from_child.writer())
            .os()
            .unwrap()
            .spawn()
    };
    drop((to_child, from_child));
    let payload = P::make(size);
    let started;
    if one_way {
        reader.read().unwrap(); // the child is running
        started = Instant::now();
        for _ in 0..count {
            reader.read().unwrap();
        }
    } else {
        // One message goes round, as in a ping-pong (and as the Python peer sends one
        // object): the value read back is the next one written, so no copy is made here.
        writer.write(payload).unwrap();
        let mut message = reader.read().unwrap();
        started = Instant::now();
        for _ in 0..count {
            writer.write(message).unwrap();
            message = reader.read().unwrap();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop((writer, reader));
    let _ = child.join();
    elapsed / f64::from(count)
}

/// Seconds per operation for a raw Unix socket between two OS processes.
fn raw_run(size: usize, count: u32, one_way: bool) -> f64 {
    let directory = std::env::temp_dir().join(format!("csp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join(format!("raw-{size}-{one_way}"));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let peer = raw_peer(path.display().to_string(), size, count + 1, one_way)
        .os()
        .unwrap()
        .spawn();
    let (mut stream, _) = listener.accept().unwrap();
    let payload = vec![7u8; size];
    let mut buffer = Vec::new();
    let started;
    if one_way {
        read_frame(&mut stream, &mut buffer).unwrap();
        started = Instant::now();
        for _ in 0..count {
            read_frame(&mut stream, &mut buffer).unwrap();
        }
    } else {
        write_frame(&mut stream, &payload).unwrap();
        read_frame(&mut stream, &mut buffer).unwrap();
        started = Instant::now();
        for _ in 0..count {
            write_frame(&mut stream, &payload).unwrap();
            read_frame(&mut stream, &mut buffer).unwrap();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    peer.join().unwrap().unwrap();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&directory);
    elapsed / f64::from(count)
}

fn python_runs() -> Option<std::collections::HashMap<String, f64>> {
    let counts: Vec<String> = SIZES
        .iter()
        .map(|(size, count)| format!("\"{size}\": {count}"))
        .collect();
    common::python_medians("mp_peer.py", &format!("{{{}}}", counts.join(", ")))
}

/// Runs one case, `kind/size` from `CSP_PROFILE`, many times for a profiler.
fn profile(case: &str) {
    let (kind, size) = case.split_once('/').expect("CSP_PROFILE is kind/size");
    let size: usize = size.parse().expect("the size is a number of bytes");
    let one_way = kind == "one_way";
    let count = std::env::var("CSP_PROFILE_COUNT").map_or(
        (200_000_000 / (size + 1000)).clamp(50, 100_000) as u32,
        |c| c.parse().unwrap(),
    );
    let capacity = std::env::var("CSP_PROFILE_BUFFER").map_or(0, |c| c.parse().unwrap());
    let seconds = match std::env::var("CSP_PROFILE_TYPE").as_deref() {
        Ok("vec") => csp_run_buffered::<Vec<u8>>(size, count, one_way, capacity),
        _ => csp_run_buffered::<ByteBuf>(size, count, one_way, capacity),
    };
    println!(
        "{case}: {:.0} ns per operation over {count} ({} requests served by waiting threads)",
        seconds * 1e9,
        csp::__private::requests_served_by_waiting_threads()
    );
}

#[csp::main]
fn main() {
    if let Ok(case) = std::env::var("CSP_PROFILE") {
        return profile(&case);
    }
    println!("Measuring {REPEATS} repeats of each; medians (us per operation) and ratios.\n");
    let python = python_runs();
    println!(
        "| workload | size | csp `Vec<u8>` | csp `ByteBuf` | raw socket | mp.Pipe | mp.Queue | csp (ByteBuf) / raw | Pipe / csp (ByteBuf) | Queue / csp (ByteBuf) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut measured = Vec::new();
    // One way twice: through a rendezvous channel, then through one buffering values, where
    // a writer in another OS process writes ahead without waiting for each answer.
    for (one_way, capacity) in [(false, 0), (true, 0), (true, BUFFERED)] {
        for (size, count) in SIZES {
            let csp_vec = median(
                (0..REPEATS)
                    .map(|_| csp_run_buffered::<Vec<u8>>(size, count, one_way, capacity))
                    .collect(),
            );
            let csp = median(
                (0..REPEATS)
                    .map(|_| csp_run_buffered::<ByteBuf>(size, count, one_way, capacity))
                    .collect(),
            );
            let raw = median(
                (0..REPEATS)
                    .map(|_| raw_run(size, count, one_way))
                    .collect(),
            );
            let kind = if one_way { "one_way" } else { "round_trip" };
            let py = |which: &str| {
                python
                    .as_ref()
                    .and_then(|p| p.get(&format!("{kind}/{size}/{which}")).copied())
            };
            let (pipe, queue) = (py("pipe"), py("queue"));
            let show = |v: Option<f64>| v.map_or("n/a".to_string(), micros);
            let ratio =
                |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.2}x", v / csp));
            measured.push(Measured {
                kind,
                capacity,
                size,
                csp,
                raw,
                pipe,
            });
            let workload = match capacity {
                0 => kind.replace('_', " "),
                capacity => format!("one way, buffered ({capacity})"),
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.2}x | {} | {} |",
                workload,
                size_name(size),
                micros(csp_vec),
                micros(csp),
                micros(raw),
                show(pipe),
                show(queue),
                csp / raw,
                ratio(pipe),
                ratio(queue),
            );
        }
    }
    let busy_pipe = python
        .as_ref()
        .and_then(|p| p.get("round_trip/8/pipe_busy").copied());
    print_busy_round_trip(&measured, busy_pipe);
    print_targets(&measured, busy_pipe);
}

/// One row of the main table, kept for the targets.
struct Measured {
    kind: &'static str,
    capacity: usize,
    size: usize,
    csp: f64,
    raw: f64,
    pipe: Option<f64>,
}

fn size_name(size: usize) -> String {
    match size {
        8 => "8 B".to_string(),
        s if s < 1 << 20 => format!("{} KiB", s >> 10),
        s => format!("{} MiB", s >> 20),
    }
}

fn find<'a>(measured: &'a [Measured], kind: &str, capacity: usize, size: usize) -> &'a Measured {
    measured
        .iter()
        .find(|m| m.kind == kind && m.capacity == capacity && m.size == size)
        .expect("every case was measured")
}

/// The 8-byte round trip with neither side ever sleeping in the kernel: csp's waits look
/// (spin, then yield) for up to 50 us before they sleep, longer than an answer takes, and
/// Python's sides poll `conn.poll()` in a loop before each `recv_bytes`.
fn print_busy_round_trip(measured: &[Measured], busy_pipe: Option<f64>) {
    let csp = find(measured, "round_trip", 0, 8);
    println!("\n#### Round trip, 8 bytes, both sides busy\n");
    println!(
        "Neither side sleeps while the other answers: csp's reads look for up to 50 us before \
         they sleep (the round trip above), and each side of the Python peer polls \
         `conn.poll()` in a loop before each `recv_bytes`.\n"
    );
    println!(
        "| csp `ByteBuf` | mp.Pipe, both sides polling | mp.Pipe, blocking `recv_bytes` | polling Pipe / csp | blocking Pipe / csp |"
    );
    println!("|---|---|---|---|---|");
    let show = |v: Option<f64>| v.map_or("n/a".to_string(), micros);
    let ratio = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.2}x", v / csp.csp));
    println!(
        "| {} | {} | {} | {} | {} |",
        micros(csp.csp),
        show(busy_pipe),
        show(csp.pipe),
        ratio(busy_pipe),
        ratio(csp.pipe),
    );
}

/// The issues' targets for these workloads, as ratios from the tables above.
fn print_targets(measured: &[Measured], busy_pipe: Option<f64>) {
    println!("\n#### Targets\n");
    println!("| target | bound | measured | verdict |");
    println!("|---|---|---|---|");
    let row = |target: String, bound: &str, value: Option<f64>, met: &dyn Fn(f64) -> bool| {
        let (shown, verdict) = match value {
            Some(v) => (format!("{v:.2}x"), if met(v) { "met" } else { "NOT met" }),
            None => ("n/a".to_string(), "n/a"),
        };
        println!("| {target} | {bound} | {shown} | {verdict} |");
    };
    for (size, _) in SIZES {
        let m = find(measured, "round_trip", 0, size);
        row(
            format!("round trip, {}: csp / raw socket (time)", size_name(size)),
            "at most 2x",
            Some(m.csp / m.raw),
            &|v| v <= 2.0,
        );
        row(
            format!("round trip, {}: mp.Pipe / csp (time)", size_name(size)),
            "at least 5x",
            m.pipe.map(|p| p / m.csp),
            &|v| v >= 5.0,
        );
    }
    for size in [64 << 10, 1 << 20] {
        let m = find(measured, "one_way", BUFFERED, size);
        row(
            format!(
                "one way, {}, buffered ({BUFFERED}): raw socket / csp (time)",
                size_name(size)
            ),
            "at least 5x",
            Some(m.raw / m.csp),
            &|v| v >= 5.0,
        );
    }
    let m = find(measured, "round_trip", 0, 8);
    row(
        "round trip, 8 B, both sides busy: polling mp.Pipe / csp (time)".to_string(),
        "at least 50x",
        busy_pipe.map(|p| p / m.csp),
        &|v| v >= 50.0,
    );
    let m = find(measured, "one_way", BUFFERED, 8);
    let rate = 1.0 / m.csp;
    println!(
        "| one way, 8 B, buffered ({BUFFERED}): csp messages per second | at least 10 M/s | {:.2} M/s | {} |",
        rate / 1e6,
        if rate >= 10e6 { "met" } else { "NOT met" }
    );
}
