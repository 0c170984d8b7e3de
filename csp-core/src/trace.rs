//! A trace of a run: process starts and ends, every communication, poison and retire, with
//! times; exported as Chrome trace-event JSON (which Perfetto opens) or as a plain CSP trace.
//!
//! Tracing is off by default and costs one relaxed atomic load per event when off.
//! [`start`] turns it on for the whole OS process; [`stop`] turns it off and returns what
//! was recorded.
//!
//! # Examples
//!
//! ```
//! use csp_core::{Channel, Parallel, Process, trace};
//!
//! let channel = Channel::<u32>::named("numbers");
//! let (writer, reader) = (channel.writer(), channel.reader());
//! trace::start();
//! Parallel::tuple((
//!     Process::new("producer", move || writer.write(7).is_ok()),
//!     Process::new("consumer", move || reader.read().ok()),
//! ))
//! .run()
//! .unwrap();
//! let recorded = trace::stop();
//! assert!(recorded.to_csp().lines().any(|line| line == "numbers"));
//! assert!(recorded.to_chrome_json().starts_with("{\"traceEvents\":["));
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::ChannelName;

static ON: AtomicBool = AtomicBool::new(false);

struct Recorder {
    started: Instant,
    events: Vec<Event>,
}

fn recorder() -> &'static Mutex<Option<Recorder>> {
    static RECORDER: OnceLock<Mutex<Option<Recorder>>> = OnceLock::new();
    RECORDER.get_or_init(|| Mutex::new(None))
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A process (or a thread using channels) started.
    Start,
    /// It ended.
    End,
    /// A value passed over the channel.
    Communication(ChannelName),
    /// The channel was poisoned.
    Poison(ChannelName),
    /// A side of the channel retired.
    Retire(ChannelName),
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When, since [`start`].
    pub at: Duration,
    /// The process that did it (for a communication: the one that completed it), or the
    /// thread, by name.
    pub process: String,
    /// A number for that process, unique in the trace.
    pub process_id: u64,
    /// What.
    pub kind: EventKind,
}

/// Whether tracing is on.
pub(crate) fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Records `kind`, by the current process, if tracing is on.
pub(crate) fn record(kind: impl FnOnce() -> EventKind) {
    if !enabled() {
        return;
    }
    let (process, process_id) = crate::deadlock::current_identity();
    record_as(process, process_id, kind());
}

/// Records `kind` by the named process, if tracing is on.
pub(crate) fn record_as(process: String, process_id: u64, kind: EventKind) {
    if !enabled() {
        return;
    }
    let mut recorder = recorder().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(recorder) = recorder.as_mut() {
        let at = recorder.started.elapsed();
        recorder.events.push(Event {
            at,
            process,
            process_id,
            kind,
        });
    }
}

/// Starts recording, from now, every event of this OS process (dropping what an earlier
/// trace left unreturned).
pub fn start() {
    *recorder().lock().unwrap_or_else(|p| p.into_inner()) = Some(Recorder {
        started: Instant::now(),
        events: Vec::new(),
    });
    ON.store(true, Ordering::Release);
}

/// Stops recording and returns the trace.
pub fn stop() -> Trace {
    ON.store(false, Ordering::Release);
    let recorder = recorder().lock().unwrap_or_else(|p| p.into_inner()).take();
    Trace {
        events: recorder.map(|recorder| recorder.events).unwrap_or_default(),
    }
}

/// A recorded trace.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    events: Vec<Event>,
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Trace {
    /// The events, in the order they happened.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The trace as Chrome trace-event JSON (open it in Perfetto or `chrome://tracing`):
    /// each process a track from its start to its end, communications, poison and retire as
    /// instant events on the track of the process that caused them.
    pub fn to_chrome_json(&self) -> String {
        let pid = std::process::id();
        let mut out = String::from("{\"traceEvents\":[");
        for (index, event) in self.events.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            let ts = event.at.as_nanos() as f64 / 1000.0;
            let (name, phase, category) = match &event.kind {
                EventKind::Start => (event.process.clone(), "B", "process"),
                EventKind::End => (event.process.clone(), "E", "process"),
                EventKind::Communication(channel) => {
                    (channel.as_str().to_string(), "i", "communication")
                }
                EventKind::Poison(channel) => {
                    (format!("poison {}", channel.as_str()), "i", "poison")
                }
                EventKind::Retire(channel) => {
                    (format!("retire {}", channel.as_str()), "i", "retire")
                }
            };
            let _ = write!(
                out,
                "{{\"name\":{},\"cat\":\"{category}\",\"ph\":\"{phase}\",\"ts\":{ts:.3},\"pid\":{pid},\"tid\":{}",
                json_string(&name),
                event.process_id
            );
            if phase == "i" {
                out.push_str(",\"s\":\"t\"");
            }
            out.push('}');
        }
        // Name each track after its process.
        let mut named = std::collections::BTreeMap::new();
        for event in &self.events {
            named.entry(event.process_id).or_insert(&event.process);
        }
        for (id, process) in named {
            let _ = write!(
                out,
                "{}{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{id},\"args\":{{\"name\":{}}}}}",
                if self.events.is_empty() { "" } else { "," },
                json_string(process)
            );
        }
        out.push_str("],\"displayTimeUnit\":\"ns\"}");
        out
    }

    /// The trace as a plain CSP trace, one event per line in order: a communication is its
    /// channel's name; the other events are `start P`, `end P`, `poison C` and `retire C`.
    pub fn to_csp(&self) -> String {
        let mut out = String::new();
        for event in &self.events {
            let _ = match &event.kind {
                EventKind::Start => writeln!(out, "start {}", event.process),
                EventKind::End => writeln!(out, "end {}", event.process),
                EventKind::Communication(channel) => writeln!(out, "{}", channel.as_str()),
                EventKind::Poison(channel) => writeln!(out, "poison {}", channel.as_str()),
                EventKind::Retire(channel) => writeln!(out, "retire {}", channel.as_str()),
            };
        }
        out
    }
}
