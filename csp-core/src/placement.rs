//! Running a process in another OS process.
//!
//! Whoever composes a network chooses where each process runs: [`Process::os`] turns a
//! `#[process]` into one that runs in a child OS process, the process function unchanged. The
//! child is this same executable started again (never `fork` without `exec`), told by a
//! one-time token in its environment which registered process to run. It must call
//! [`init`] (or use `#[csp::main]`) first thing in `main`, which does nothing in the parent.
//!
//! # The protocol
//!
//! The parent listens on a Unix socket with a random name inside a private directory (mode
//! 0700). The child connects, both prove they know the network's secret (see
//! [`net::auth`](crate::net::auth)), and only then does the child send its token and receive
//! its job: the registered name, the fingerprint of its types, and its encoded arguments. It
//! runs the process and sends back the encoded result, or the error (a panic with its
//! message). Frames are bounded ([`net::frame`](crate::net::frame)).
//!
//! # Failures
//!
//! A child that ends without a result (killed, aborted, exited early) is reported as
//! [`RunError::ChildDied`] with its exit status; the parent always reaps its children, and a
//! child dies with its parent (`PR_SET_PDEATHSIG`), so none is left behind.
//!
//! # Under `cargo test`
//!
//! A test binary re-executed with no arguments would run every test again. Put
//! `csp::child_entry!();` in each integration test file that places processes: it defines a
//! test that serves as the child's exact entry point, and the parent starts children with that
//! test's name and `--exact`.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::RunError;
use crate::net::auth::{self, Secret};
use crate::net::frame::{self, DEFAULT_FRAME_LIMIT};
use crate::registry;
use crate::work::Placeable;

const ENV_ADDRESS: &str = "CSP_CHILD_ADDRESS";
const ENV_SECRET: &str = "CSP_CHILD_SECRET";
const ENV_TOKEN: &str = "CSP_CHILD_TOKEN";
const ENV_PARENT: &str = "CSP_CHILD_PARENT";

/// How long a connecting peer may take to authenticate and say who it is.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);
/// How long a started child may take to connect back.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a child that reported may take to exit before it is killed.
const EXIT_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    token: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Job {
    name: String,
    fingerprint: u64,
    arguments: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Done {
    result: Result<Vec<u8>, RunError>,
}

/// The test that serves as a child's entry point under the test harness.
#[doc(hidden)]
#[derive(Debug)]
pub struct ChildEntry {
    /// `module_path!()` where `child_entry!` was used.
    pub module: &'static str,
}

inventory::collect!(ChildEntry);

/// The name of the entry test function `child_entry!` defines.
#[doc(hidden)]
pub const CHILD_ENTRY_TEST: &str = "csp_child_entry";

/// The arguments that make a re-executed test binary run only the child entry.
fn child_arguments() -> Vec<String> {
    let Some(entry) = inventory::iter::<ChildEntry>.into_iter().next() else {
        return Vec::new();
    };
    // Test names are module paths without the crate's name.
    let mut path: Vec<&str> = entry.module.split("::").skip(1).collect();
    path.push(CHILD_ENTRY_TEST);
    vec![
        path.join("::"),
        "--exact".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
        "-q".into(),
    ]
}

/// Prepares this OS process for placement; call it first thing in `main`.
///
/// In a child started by placement it runs the child's job and exits, never returning. In
/// any other process it checks the process registry and returns.
///
/// # Panics
///
/// If the registry is broken (see [`registry::check`]): better at start-up than when a
/// child cannot find its process.
pub fn init() {
    match std::env::var(ENV_ADDRESS) {
        Ok(address) => std::process::exit(serve_as_child(Path::new(&address))),
        Err(_) => {
            if let Err(error) = registry::check() {
                panic!("csp::init: {error}");
            }
        }
    }
}

/// The child's side: connect, authenticate, run the job, report. Returns the exit code.
fn serve_as_child(address: &Path) -> i32 {
    // Die with the parent; if it is already gone, stop now.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let parent = std::env::var(ENV_PARENT)
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok());
    if parent != Some(std::os::unix::process::parent_id()) {
        eprintln!("csp child: the parent that started this process is gone");
        return 3;
    }
    match run_job(address) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("csp child: {error}");
            2
        }
    }
}

fn run_job(address: &Path) -> Result<(), String> {
    let secret = std::env::var(ENV_SECRET)
        .ok()
        .and_then(|hex| Secret::from_hex(&hex))
        .ok_or("no valid network secret in the environment")?;
    let token = std::env::var(ENV_TOKEN).map_err(|_| "no token in the environment")?;
    let mut stream = UnixStream::connect(address)
        .map_err(|error| format!("cannot reach the parent at {}: {error}", address.display()))?;
    stream
        .set_read_timeout(Some(HANDSHAKE_LIMIT))
        .map_err(|error| error.to_string())?;
    auth::connect(&mut stream, &secret).map_err(|error| error.to_string())?;
    send(&mut stream, &Hello { token })?;
    stream
        .set_read_timeout(None)
        .map_err(|error| error.to_string())?;
    let job: Job = receive(&mut stream)?;
    let result = match registry::lookup(&job.name) {
        None => Err(RunError::Placement {
            process: job.name.clone(),
            reason: format!(
                "it is not registered in the child ({} entries)",
                registry::len()
            ),
        }),
        Some(entry) if entry.fingerprint != job.fingerprint => Err(RunError::Placement {
            process: job.name.clone(),
            reason: "its argument or result types differ between parent and child (was the \
                     executable rebuilt while running?)"
                .to_string(),
        }),
        Some(entry) => (entry.run)(&job.arguments),
    };
    send(&mut stream, &Done { result })
}

fn send(stream: &mut UnixStream, message: &impl Serialize) -> Result<(), String> {
    let bytes = postcard::to_stdvec(message).map_err(|error| format!("cannot encode: {error}"))?;
    frame::write_frame(stream, &bytes, DEFAULT_FRAME_LIMIT).map_err(|error| error.to_string())
}

fn receive<M: for<'de> Deserialize<'de>>(stream: &mut UnixStream) -> Result<M, String> {
    let mut buffer = Vec::new();
    frame::read_frame(stream, &mut buffer, DEFAULT_FRAME_LIMIT)
        .map_err(|error| error.to_string())?;
    postcard::from_bytes(&buffer).map_err(|error| format!("malformed message: {error}"))
}

/// The parent's listening socket, shared by all children running at one time.
struct Listener {
    directory: PathBuf,
    address: PathBuf,
    secret: Secret,
    expected: Mutex<HashMap<String, mpsc::Sender<UnixStream>>>,
}

fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).expect("the operating system's random source");
    raw.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Listener {
    /// The running listener, or a new one.
    fn shared() -> io::Result<Arc<Listener>> {
        static CURRENT: OnceLock<Mutex<Weak<Listener>>> = OnceLock::new();
        let mut current = CURRENT
            .get_or_init(|| Mutex::new(Weak::new()))
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(listener) = current.upgrade() {
            return Ok(listener);
        }
        let listener = Listener::start()?;
        *current = Arc::downgrade(&listener);
        Ok(listener)
    }

    fn start() -> io::Result<Arc<Listener>> {
        let directory = std::env::temp_dir().join(format!("csp-{}", random_hex(8)));
        std::fs::DirBuilder::new().mode(0o700).create(&directory)?;
        let address = directory.join(random_hex(8));
        let socket = UnixListener::bind(&address)?;
        let listener = Arc::new(Listener {
            directory,
            address,
            secret: Secret::random(),
            expected: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&listener);
        thread::Builder::new()
            .name("csp-listener".into())
            .spawn(move || accept_loop(&socket, &weak))?;
        Ok(listener)
    }

    fn expect(&self, token: &str) -> mpsc::Receiver<UnixStream> {
        let (sender, receiver) = mpsc::channel();
        self.expected_map().insert(token.to_string(), sender);
        receiver
    }

    fn forget(&self, token: &str) {
        self.expected_map().remove(token);
    }

    fn expected_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<UnixStream>>> {
        self.expected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Wake the accept loop (it sees the listener gone and ends), then clean up.
        let _ = UnixStream::connect(&self.address);
        let _ = std::fs::remove_file(&self.address);
        let _ = std::fs::remove_dir(&self.directory);
    }
}

fn accept_loop(socket: &UnixListener, listener: &Weak<Listener>) {
    for stream in socket.incoming() {
        let Some(listener) = listener.upgrade() else {
            return;
        };
        let Ok(stream) = stream else {
            continue;
        };
        // Authenticate off the accept thread: a silent peer must not block others.
        let _ = thread::Builder::new()
            .name("csp-handshake".into())
            .spawn(move || {
                if let Err(error) = admit(stream, &listener) {
                    eprintln!("csp: refused a connection: {error}");
                }
            });
    }
}

/// Authenticates a connection and hands it to the placement waiting for its token.
fn admit(mut stream: UnixStream, listener: &Listener) -> Result<(), String> {
    stream
        .set_read_timeout(Some(HANDSHAKE_LIMIT))
        .map_err(|error| error.to_string())?;
    auth::accept(&mut stream, &listener.secret).map_err(|error| error.to_string())?;
    let hello: Hello = receive(&mut stream)?;
    stream
        .set_read_timeout(None)
        .map_err(|error| error.to_string())?;
    let waiting = listener.expected_map().remove(&hello.token);
    match waiting {
        Some(sender) => sender
            .send(stream)
            .map_err(|_| "the placement gave up".to_string()),
        None => Err("an unknown or used token".to_string()),
    }
}

/// Runs a placed process in a new child OS process and returns its encoded result.
pub(crate) fn run_in_child(process: &str, job: Placeable) -> Result<Vec<u8>, RunError> {
    let fail = |reason: String| RunError::Placement {
        process: process.to_string(),
        reason,
    };
    let listener = Listener::shared().map_err(|error| fail(format!("cannot listen: {error}")))?;
    let token = random_hex(16);
    let connected = listener.expect(&token);
    let executable = std::env::current_exe()
        .map_err(|error| fail(format!("cannot find this executable: {error}")))?;
    let mut child = Command::new(executable)
        .args(child_arguments())
        .env(ENV_ADDRESS, &listener.address)
        .env(ENV_SECRET, listener.secret.to_hex())
        .env(ENV_TOKEN, &token)
        .env(ENV_PARENT, std::process::id().to_string())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|error| fail(format!("cannot start a child: {error}")))?;
    let outcome = converse(&mut child, &connected, job);
    listener.forget(&token);
    let status = reap(&mut child);
    match outcome {
        Ok(Done { result }) => result,
        Err(Some(reason)) => Err(fail(reason)),
        Err(None) => Err(RunError::ChildDied {
            process: process.to_string(),
            status: describe(status),
        }),
    }
}

/// Waits for the child to connect, sends the job and reads the result. `Err(None)` means the
/// child went away without a result.
fn converse(
    child: &mut Child,
    connected: &mpsc::Receiver<UnixStream>,
    job: Placeable,
) -> Result<Done, Option<String>> {
    let started = Instant::now();
    let mut stream = loop {
        match connected.recv_timeout(Duration::from_millis(20)) {
            Ok(stream) => break stream,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if child.try_wait().ok().flatten().is_some() {
                    return Err(None);
                }
                if started.elapsed() > START_LIMIT {
                    return Err(Some(format!(
                        "the child did not connect within {START_LIMIT:?}; does `main` call \
                         csp::init() first (or, under cargo test, does the test file use \
                         csp::child_entry!())?"
                    )));
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Some("listener lost".into())),
        }
    };
    let job = Job {
        name: job.name.to_string(),
        fingerprint: job.fingerprint,
        arguments: job.arguments,
    };
    send(&mut stream, &job).map_err(|_| None)?;
    receive::<Done>(&mut stream).map_err(|_| None)
}

/// Waits (bounded) for the child to exit, killing it if it lingers.
fn reap(child: &mut Child) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if started.elapsed() < EXIT_LIMIT => thread::sleep(Duration::from_millis(2)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                return child.wait().ok();
            }
        }
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => {
                let name = nix::sys::signal::Signal::try_from(signal)
                    .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string());
                format!("killed by {name}")
            }
            _ => status.to_string(),
        },
        None => "its exit status could not be read".to_string(),
    }
}

/// Defines the entry point that children started from this test binary run.
///
/// Use it once in every integration test file (test binary) that places processes in other
/// OS processes. It defines a test named `csp_child_entry`; in the test run itself it only
/// checks the registry.
///
/// # Examples
///
/// ```ignore
/// // tests/placement.rs
/// csp::child_entry!();
/// ```
#[macro_export]
macro_rules! child_entry {
    () => {
        #[test]
        fn csp_child_entry() {
            $crate::init();
        }

        $crate::__private::inventory::submit! {
            $crate::placement::ChildEntry { module: ::core::module_path!() }
        }
    };
}
