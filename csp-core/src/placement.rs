//! Running a process in another OS process.
//!
//! Whoever composes a network chooses where each process runs: [`Process::os`](crate::Process::os) turns a
//! `#[process]` into one that runs in a child OS process, the process function unchanged. The
//! child is this same executable started again (never `fork` without `exec`), told by a
//! one-time token in its environment which registered process to run. It must call
//! [`init`] (or use `#[csp::main]`) first thing in `main`, which does nothing in the parent.
//!
//! # The protocol
//!
//! The parent's node listens on a Unix socket with a random name inside a
//! private directory (mode 0700). The child connects, both prove they know the network's secret (see
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

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::deadlock::{self, Interrupt, Standstill, Waiting};
use crate::error::RunError;
use crate::net::address::Address;
use crate::net::auth;
use crate::net::connection::{Connection, send_on};
use crate::net::frame;
use crate::net::message::{Done, FromChild, Hello, Job, ToChild};
use crate::node::{self, ENV_SECRET, node};
use crate::registry;
use crate::transfer::TicketScope;
use crate::work::Placeable;

const ENV_ADDRESS: &str = "CSP_CHILD_ADDRESS";
const ENV_TOKEN: &str = "CSP_CHILD_TOKEN";
const ENV_PARENT: &str = "CSP_CHILD_PARENT";

/// How long a child may take to authenticate.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);
/// How long a started child may take to connect back.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a child that reported may take to exit before it is killed.
const EXIT_LIMIT: Duration = Duration::from_secs(5);
/// How long a child waits for the parent to confirm it decoded the result.
const ACKNOWLEDGE_LIMIT: Duration = Duration::from_secs(60);
/// The largest frame a child accepts from its parent after the job (a deadlock's report).
const PARENT_FRAME_LIMIT: usize = 1 << 20;

/// In a child, the name its process was given by the composition in the parent.
static SHOWN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names `process` as the parent's composition named it, if this is a child running it.
pub(crate) fn as_shown<R: Send + 'static>(process: crate::Process<R>) -> crate::Process<R> {
    match SHOWN.get() {
        Some(shown) => process.named(shown.clone()),
        None => process,
    }
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
        Ok(address) => std::process::exit(serve_as_child(&address)),
        Err(_) => {
            if let Err(error) = registry::check() {
                panic!("csp::init: {error}");
            }
        }
    }
}

/// The child's side: connect, authenticate, run the job, report. Returns the exit code.
fn serve_as_child(address: &str) -> i32 {
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

fn run_job(address: &str) -> Result<(), String> {
    let token = std::env::var(ENV_TOKEN).map_err(|_| "no token in the environment")?;
    let address =
        Address::from_text(address).ok_or("no valid parent address in the environment")?;
    let mut stream = address
        .connect()
        .map_err(|error| format!("cannot reach the parent at {address}: {error}"))?;
    stream
        .set_read_timeout(Some(HANDSHAKE_LIMIT))
        .map_err(|error| error.to_string())?;
    auth::connect(&mut stream, node::secret()).map_err(|error| error.to_string())?;
    stream
        .set_read_timeout(None)
        .map_err(|error| error.to_string())?;
    let mut connection = Connection::new(stream).map_err(|error| error.to_string())?;
    connection
        .send(&Hello::Child { token })
        .map_err(|error| error.to_string())?;
    let job: Job = connection.receive().map_err(|error| error.to_string())?;
    let _ = SHOWN.set(job.shown.clone());
    // From here on the parent may speak at any time (a deadlock), so a thread listens; the
    // result and the standstills of this child's actors share the writing side.
    let socket = connection
        .into_socket()
        .map_err(|error| error.to_string())?;
    let to_parent = Arc::new(Mutex::new(
        socket.try_clone().map_err(|error| error.to_string())?,
    ));
    let (decoded, was_decoded) = mpsc::channel();
    thread::Builder::new()
        .name("csp-parent".into())
        .spawn(move || listen_to_parent(socket, &decoded))
        .map_err(|error| error.to_string())?;
    let reporting = Arc::clone(&to_parent);
    deadlock::report_to_parent(move |standstill| {
        let _ = send_on(&reporting, &FromChild::Standstill(standstill));
    });
    // Ends inside the result are lent until the parent confirms it decoded the result.
    let (result, lent) = TicketScope::collect(|| match registry::lookup(&job.name) {
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
        Some(entry) => (entry.run)(&job.arguments).map(serde_bytes::ByteBuf::from),
    });
    // Values written ahead are in their channels before the parent hears of the result.
    crate::remote::flush_writes_ahead();
    send_on(&to_parent, &FromChild::Done(Done { result })).map_err(|error| error.to_string())?;
    let _ = was_decoded.recv_timeout(ACKNOWLEDGE_LIMIT);
    drop(lent);
    Ok(())
}

/// The child's ear: a deadlock the parent declared, and the parent's word that it decoded
/// the result (or its end).
fn listen_to_parent(socket: UnixStream, decoded: &mpsc::Sender<()>) {
    let mut socket = BufReader::new(socket);
    let mut buffer = Vec::new();
    while frame::read_frame(&mut socket, &mut buffer, PARENT_FRAME_LIMIT).is_ok() {
        match postcard::from_bytes::<ToChild>(&buffer) {
            Ok(ToChild::Deadlock(report)) => deadlock::declared_by_parent(report),
            Ok(ToChild::Decoded) | Err(_) => break,
        }
    }
    let _ = decoded.send(());
}

/// Runs a placed process in a new child OS process and decodes its result.
pub(crate) fn run_in_child<R: Serialize + DeserializeOwned>(
    process: &str,
    job: Placeable,
) -> Result<R, RunError> {
    let fail = |reason: String| RunError::Placement {
        process: process.to_string(),
        reason,
    };
    let hold = node()
        .hold()
        .map_err(|error| fail(format!("cannot listen: {error}")))?;
    let token = node::random_hex(16);
    let connected = node().expect_child(&token);
    let executable = std::env::current_exe()
        .map_err(|error| fail(format!("cannot find this executable: {error}")))?;
    let spawned = Command::new(executable)
        .args(child_arguments())
        .env(ENV_ADDRESS, hold.address().to_text())
        .env(ENV_SECRET, node::secret().to_hex())
        .env(ENV_TOKEN, &token)
        .env(ENV_PARENT, std::process::id().to_string())
        .stdin(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            node().forget_child(&token);
            return Err(fail(format!("cannot start a child: {error}")));
        }
    };
    let outcome = converse(&mut child, &connected, job);
    node().forget_child(&token);
    let result = match outcome {
        Ok((done, to_child)) => {
            let decoded = done.result.and_then(|bytes| {
                postcard::from_bytes::<R>(&bytes).map_err(|error| {
                    let error = crate::transfer::explain(&error);
                    fail(format!("its result could not be decoded: {error}"))
                })
            });
            // Decoded (ends inside it claimed): the child may let go of what it lent.
            let _ = send_on(&to_child, &ToChild::Decoded);
            decoded
        }
        Err(Some(reason)) => Err(fail(reason)),
        Err(None) => Err(RunError::ChildDied {
            process: process.to_string(),
            status: describe(reap(&mut child)),
        }),
    };
    reap(&mut child);
    drop(hold);
    result
}

/// Waits for the child to connect, sends the job and reads the result. `Err(None)` means the
/// child went away without a result. The job's lent ends stay lent until the child is done.
///
/// While the child says all its actors are blocked, the process it runs counts as blocked
/// here, on what they wait for: the deadlock monitor sees the whole network from the top.
fn converse(
    child: &mut Child,
    connected: &mpsc::Receiver<Connection>,
    job: Placeable,
) -> Result<(Done, Arc<Mutex<UnixStream>>), Option<String>> {
    let started = Instant::now();
    let mut connection = loop {
        match connected.recv_timeout(Duration::from_millis(20)) {
            Ok(connection) => break connection,
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
    let Placeable {
        name,
        fingerprint,
        arguments,
        lent,
    } = job;
    let job = Job {
        name: name.to_string(),
        shown: deadlock::current_identity().0,
        fingerprint,
        arguments,
    };
    connection.send(&job).map_err(|_| None)?;
    let to_child = Arc::new(Mutex::new(connection.writer_clone().map_err(|_| None)?));
    let mut standing = None;
    let done = loop {
        match connection.receive::<FromChild>().map_err(|_| None)? {
            FromChild::Standstill(Standstill::Blocked(stuck)) => {
                drop(standing.take());
                let telling = Arc::clone(&to_child);
                let interrupt = Interrupt(Arc::new(move |report: &str| {
                    let _ = send_on(&telling, &ToChild::Deadlock(report.to_string()));
                }));
                let waiting = Waiting::Child(Arc::new(stuck), interrupt);
                standing = deadlock::block(|| Some(waiting), |_| {}, || true, None);
            }
            FromChild::Standstill(Standstill::Moving) => standing = None,
            FromChild::Done(done) => break done,
        }
    };
    drop(standing);
    drop(lent);
    Ok((done, to_child))
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
/// ```text
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
