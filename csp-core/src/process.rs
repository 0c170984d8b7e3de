//! Processes: values that describe work, run only when composed.
//!
//! A [`Process`] is built (usually by the `#[process]` attribute of the `csp` crate) from a
//! function and its arguments, and nothing runs until it is composed and run: by
//! [`Process::run`], inside a [`Parallel`](crate::Parallel) or
//! [`Sequence`](crate::Sequence), or in the background by [`Process::spawn`]. Whoever composes
//! decides where a process runs; the process itself does not change. Here every process runs
//! on a thread of its own.
//!
//! # How a process ends
//!
//! A body may return any value. If it returns a `Result` whose error is a poisoned or retired
//! channel (any error type of this crate, or one implementing [`ChannelFailure`]), the process
//! *ended because of poison* or *because of retire*: a normal ending, and its result is
//! returned to the composition like any other. A process that ended because of poison then
//! poisons every channel end among its arguments (see [`propagation`](crate::propagation));
//! one that ended because of retire retires them, because its ends are dropped. A process can
//! opt out of poison propagation ([`Process::without_propagation`], or
//! `#[process(propagate = false)]`).
//!
//! A process that *panics* always poisons its ends, so the rest of the network winds down,
//! and the composition reports [`RunError::Panicked`] naming the process and its message.
//!
//! # Examples
//!
//! Without the attribute macro, a process is a named closure:
//!
//! ```
//! use csp_core::{Channel, Parallel, Process};
//!
//! let channel = Channel::<u32>::new();
//! let (writer, reader) = (channel.writer(), channel.reader());
//! let producer = Process::new("producer", move || (1..=3).try_for_each(|n| writer.write(n)).is_ok());
//! let consumer = Process::new("consumer", move || reader.iter().sum::<u32>());
//! let (sent, total) = Parallel::tuple((producer, consumer)).run().unwrap();
//! assert!(sent);
//! assert_eq!(total, 6);
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::deadlock;
use crate::error::{
    ChannelError, Error, ReadTimeoutError, RunError, SelectError, TryReadError, TryWriteError,
    WriteError, WriteTimeoutError,
};
use crate::picture::{Picture, Placement, Shape};
use crate::propagation::{ChannelEnds, EndSet};
use crate::work::{AsyncCall, Call, Closure, Work};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;

/// How a process's body ended, as far as propagation is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It returned normally (or with an error that is not a channel's).
    Completed,
    /// It returned a poisoned-channel error.
    Poisoned,
    /// It returned a retired-channel error.
    Retired,
}

impl Ending {
    /// The ending a channel error stands for.
    pub fn of(error: Option<&ChannelError>) -> Ending {
        match error {
            Some(ChannelError::Poisoned { .. }) => Ending::Poisoned,
            Some(ChannelError::Retired { .. }) => Ending::Retired,
            None => Ending::Completed,
        }
    }
}

/// An error that may say "a channel was poisoned or retired".
///
/// Implemented by every error type of this crate and by `Box<dyn Error + Send + Sync>` (which
/// is looked into). Implement it for your own process error type to keep poison propagation.
pub trait ChannelFailure {
    /// The channel error this error stands for, if any.
    fn channel_error(&self) -> Option<&ChannelError>;
}

impl ChannelFailure for ChannelError {
    fn channel_error(&self) -> Option<&ChannelError> {
        Some(self)
    }
}

impl ChannelFailure for Error {
    fn channel_error(&self) -> Option<&ChannelError> {
        Error::channel_error(self)
    }
}

impl ChannelFailure for SelectError {
    fn channel_error(&self) -> Option<&ChannelError> {
        match self {
            SelectError::Channel { error, .. } => Some(error),
            SelectError::NoEnabledGuard => None,
        }
    }
}

impl<T> ChannelFailure for WriteError<T> {
    fn channel_error(&self) -> Option<&ChannelError> {
        Some(&self.error)
    }
}

impl ChannelFailure for TryReadError {
    fn channel_error(&self) -> Option<&ChannelError> {
        match self {
            TryReadError::Channel(error) => Some(error),
            TryReadError::Empty { .. } => None,
        }
    }
}

impl ChannelFailure for ReadTimeoutError {
    fn channel_error(&self) -> Option<&ChannelError> {
        match self {
            ReadTimeoutError::Channel(error) => Some(error),
            ReadTimeoutError::Timeout { .. } => None,
        }
    }
}

impl<T> ChannelFailure for TryWriteError<T> {
    fn channel_error(&self) -> Option<&ChannelError> {
        TryWriteError::channel_error(self)
    }
}

impl<T> ChannelFailure for WriteTimeoutError<T> {
    fn channel_error(&self) -> Option<&ChannelError> {
        WriteTimeoutError::channel_error(self)
    }
}

impl ChannelFailure for RunError {
    fn channel_error(&self) -> Option<&ChannelError> {
        None
    }
}

impl ChannelFailure for Box<dyn std::error::Error + Send + Sync> {
    fn channel_error(&self) -> Option<&ChannelError> {
        let error: &(dyn std::error::Error + 'static) = &**self;
        if let Some(error) = error.downcast_ref::<ChannelError>() {
            return Some(error);
        }
        if let Some(error) = error.downcast_ref::<Error>() {
            return error.channel_error();
        }
        error.downcast_ref::<SelectError>()?.channel_error()
    }
}

/// Macro support: tells the [`Ending`] of a body's result whatever its type.
#[doc(hidden)]
pub struct Classify<'a, R>(pub &'a R);

#[doc(hidden)]
pub trait ClassifyResult {
    fn ending(&self) -> Ending;
}

impl<T, E: ChannelFailure> ClassifyResult for Classify<'_, Result<T, E>> {
    fn ending(&self) -> Ending {
        match self.0 {
            Ok(_) => Ending::Completed,
            Err(error) => Ending::of(error.channel_error()),
        }
    }
}

#[doc(hidden)]
pub trait ClassifyOther {
    fn ending(&self) -> Ending;
}

impl<R> ClassifyOther for &Classify<'_, R> {
    fn ending(&self) -> Ending {
        Ending::Completed
    }
}

/// A process: work described, not yet running. See the [module documentation](self).
#[must_use = "a process does nothing until it is run or composed"]
pub struct Process<R> {
    name: Cow<'static, str>,
    work: Box<dyn Work<R>>,
    ends: EndSet,
    propagate: bool,
    ending: fn(&R) -> Ending,
    /// Whether the body passes its ending on itself (`#[process]` bodies do, through an
    /// [`EndingGuard`](crate::propagation::EndingGuard), before their ends are dropped).
    propagates_in_body: bool,
    /// Runs as a task on the executor when spawned, not on a thread of its own.
    lightweight: bool,
    /// For pictures: placed in another OS process, or a composition's parts.
    form: Form,
}

/// What a process is, beyond its name and ends, for [`Process::picture`].
#[derive(Clone)]
pub(crate) enum Form {
    Plain,
    Placed,
    Composition(&'static str, Vec<Shape>),
}

/// What is done with a process's outcome: propagation and the error a panic becomes.
struct Aftermath<R> {
    name: Cow<'static, str>,
    ends: EndSet,
    propagate: bool,
    ending: fn(&R) -> Ending,
    propagates_in_body: bool,
}

impl<R> Aftermath<R> {
    fn finish(self, outcome: thread::Result<R>) -> Result<R, RunError> {
        match outcome {
            Ok(result) => {
                if !self.propagates_in_body
                    && self.propagate
                    && (self.ending)(&result) == Ending::Poisoned
                {
                    self.ends.poison_all();
                }
                Ok(result)
            }
            Err(payload) => {
                if !self.propagates_in_body {
                    self.ends.poison_all();
                }
                Err(run_error_from_panic(&self.name, payload))
            }
        }
    }

    fn into_process(self, work: Box<dyn Work<R>>) -> Process<R> {
        Process {
            name: self.name,
            work,
            ends: self.ends,
            propagate: self.propagate,
            ending: self.ending,
            propagates_in_body: self.propagates_in_body,
            lightweight: false,
            form: Form::Plain,
        }
    }
}

impl<R: Send + 'static> Process<R> {
    /// A process named `name` running `body`.
    ///
    /// It has no channel ends to poison if it panics: add them with
    /// [`with_ends`](Process::with_ends), or use `#[process]`, which finds them. Ends the
    /// closure captures are dropped (retired) as it returns, just before this process can
    /// poison them; `#[process]` passes poison on before its arguments are dropped.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        body: impl FnOnce() -> R + Send + 'static,
    ) -> Self {
        Process {
            name: name.into(),
            work: Box::new(Closure(body)),
            ends: EndSet::new(),
            propagate: true,
            ending: |_| Ending::Completed,
            propagates_in_body: false,
            lightweight: false,
            form: Form::Plain,
        }
    }

    /// Used by `#[process]`: the body passes its ending on to its ends itself; `ends` (found
    /// in the arguments) is kept for diagnostics. `fingerprint` is `None` for a generic
    /// process, which is not registered.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn __from_macro<A: Send + 'static>(
        name: &'static str,
        fingerprint: Option<u64>,
        ends: EndSet,
        propagate: bool,
        arguments: A,
        body: fn(A) -> R,
        encode: fn(&A) -> Result<Vec<u8>, String>,
        ending: fn(&R) -> Ending,
    ) -> Self {
        let work = Call {
            name,
            fingerprint,
            arguments,
            body,
            encode,
        };
        Self::from_macro(name, Box::new(work), ends, propagate, ending, false)
    }

    /// What both `#[process]` constructors make: a process whose body passes its ending on.
    fn from_macro(
        name: &'static str,
        work: Box<dyn Work<R>>,
        ends: EndSet,
        propagate: bool,
        ending: fn(&R) -> Ending,
        lightweight: bool,
    ) -> Self {
        Process {
            name: Cow::Borrowed(name),
            work,
            ends,
            propagate,
            ending,
            propagates_in_body: true,
            lightweight,
            form: Form::Plain,
        }
    }

    /// Used by `#[process]` on an `async fn`: as [`__from_macro`](Process::__from_macro), for
    /// a lightweight process whose body is a future.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn __from_macro_async<A: Send + 'static>(
        name: &'static str,
        fingerprint: Option<u64>,
        ends: EndSet,
        propagate: bool,
        arguments: A,
        body: fn(A) -> futures::future::BoxFuture<'static, R>,
        encode: fn(&A) -> Result<Vec<u8>, String>,
        ending: fn(&R) -> Ending,
    ) -> Self {
        let work = AsyncCall {
            name,
            fingerprint,
            arguments,
            body,
            encode,
        };
        Self::from_macro(name, Box::new(work), ends, propagate, ending, true)
    }

    /// Adds the channel ends inside `value` to the ends this process poisons when it panics or
    /// (with [`with_ending`](Process::with_ending)) ends because of poison.
    pub fn with_ends(mut self, value: &(impl ChannelEnds + ?Sized)) -> Self {
        self.ends.add(value);
        self
    }

    /// Says how to tell from the result whether the process ended because of poison.
    pub fn with_ending(mut self, ending: fn(&R) -> Ending) -> Self {
        self.ending = ending;
        self
    }

    /// Opts out of passing poison on to the process's ends when it ends because of poison.
    /// A panic still poisons them.
    pub fn without_propagation(mut self) -> Self {
        self.propagate = false;
        self
    }

    /// Renames the process (the name appears in errors and thread names).
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The process's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A picture of this process or composition, to render as Graphviz DOT (see
    /// [`picture`](crate::picture)). Take it before running the process: it keeps hold of
    /// the channels, and shows their traffic whenever it is rendered.
    pub fn picture(&self) -> Picture {
        Picture::new(self.shape())
    }

    pub(crate) fn shape(&self) -> Shape {
        match &self.form {
            Form::Composition(kind, parts) => Shape::Composition {
                kind,
                parts: parts.clone(),
            },
            form => Shape::Process {
                name: self.name.to_string(),
                placement: match (form, self.lightweight) {
                    (Form::Placed, _) => Placement::OsProcess,
                    (_, true) => Placement::Task,
                    _ => Placement::Thread,
                },
                ends: self.ends.clone(),
            },
        }
    }

    /// Marks the process as a composition of `parts`, for pictures.
    pub(crate) fn composed_of(mut self, kind: &'static str, parts: Vec<Shape>) -> Self {
        self.form = Form::Composition(kind, parts);
        self
    }

    /// Runs the process on the current thread and returns its result.
    ///
    /// # Errors
    ///
    /// [`RunError::Panicked`] if the process, or any process of a composition it stands for,
    /// panicked.
    pub fn run(self) -> Result<R, RunError> {
        let generation = deadlock::generation();
        // The calling thread waits for this process, which runs on it as an actor of its own.
        let actor = deadlock::arrive(self.name.clone(), self.ends.clone());
        let caller = deadlock::block(
            || Some(deadlock::Waiting::Join(self.name.to_string())),
            |_| {},
            || true,
            None,
        );
        let result = deadlock::acting_for(&actor, || self.execute());
        drop(caller); // the caller runs again before the process is gone
        deadlock::depart(&actor);
        deadlocked_since(generation, result)
    }

    /// Runs the process on this thread, for the actor already acting here.
    fn execute(self) -> Result<R, RunError> {
        let (work, after) = self.into_parts();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| work.run()));
        // Its writes ahead are carried out before anyone learns it ended.
        crate::remote::flush_writes_ahead();
        after.finish(outcome)
    }

    fn into_parts(self) -> (Box<dyn Work<R>>, Aftermath<R>) {
        let Process {
            name,
            work,
            ends,
            propagate,
            ending,
            propagates_in_body,
            lightweight: _,
            form: _,
        } = self;
        let after = Aftermath {
            name,
            ends,
            propagate,
            ending,
            propagates_in_body,
        };
        (work, after)
    }

    /// Whether the process is lightweight: it runs as a task when composed
    /// (`#[process] async fn`).
    pub fn is_lightweight(&self) -> bool {
        self.lightweight
    }

    /// Starts the process on a thread of its own and returns a handle to join it.
    ///
    /// # Examples
    ///
    /// ```
    /// use csp_core::Process;
    /// use std::time::Duration;
    ///
    /// let handle = Process::new("answer", || 6 * 7).spawn();
    /// assert_eq!(handle.join_timeout(Duration::from_secs(5)).unwrap(), 42);
    /// ```
    pub fn spawn(self) -> SpawnHandle<R> {
        let name = self.name.to_string();
        let (sender, receiver) = mpsc::sync_channel(1);
        let finish = Arc::new(Finish::default());
        let finished = Arc::clone(&finish);
        let thread = self.start(move |result| {
            finished.done();
            // The receiver may be gone (a handle dropped without joining): nothing to do then.
            let _ = sender.send(result);
        });
        SpawnHandle {
            name,
            receiver,
            thread,
            finish,
            generation: deadlock::generation(),
        }
    }

    /// Starts the process in the background, as a task if it is lightweight and on a thread
    /// of its own otherwise, and hands its outcome to `done`; returns the thread, if any.
    pub(crate) fn start(
        self,
        done: impl FnOnce(Result<R, RunError>) + Send + 'static,
    ) -> Option<thread::JoinHandle<()>> {
        // Registered from now, not from when its thread or task first runs: whoever waits
        // for it right after this is never alone in the count.
        let process = if self.lightweight {
            let name = self.name.clone();
            let ends = self.ends.clone();
            let (work, after) = self.into_parts();
            match work.into_task() {
                Ok(task) => {
                    start_task(name, ends, task, crate::executor::spawn, move |outcome| {
                        done(after.finish(outcome));
                    });
                    return None;
                }
                Err(work) => after.into_process(work),
            }
        } else {
            self
        };
        let actor = deadlock::arrive(process.name.clone(), process.ends.clone());
        let name = process.name.to_string();
        let thread = thread::Builder::new()
            .name(thread_name(&name))
            .spawn(move || {
                let result = deadlock::acting_for(&actor, || process.execute());
                done(result);
                deadlock::depart(&actor);
            })
            .unwrap_or_else(|error| panic!("cannot start a thread for process {name}: {error}"));
        Some(thread)
    }

    /// The same process, to run in a child OS process when it is run or composed.
    ///
    /// The child is this executable started again; its `main` must call [`crate::init`]
    /// first (or use `#[csp::main]`), and test binaries need `csp::child_entry!()`. The
    /// process function does not change. Its result crosses back encoded with postcard, so
    /// `R` must be serializable (checked at compile time); so must its arguments (checked
    /// here). A panic in the child comes back as [`RunError::Panicked`] with its message; a
    /// child that ends without a result as [`RunError::ChildDied`] with its exit status.
    ///
    /// # Errors
    ///
    /// [`RunError::Placement`] if the process was built from a closure, is generic, or has
    /// arguments that cannot be serialized, or if it is not in this executable's registry.
    ///
    /// # Examples
    ///
    /// See "Placement in OS processes" in the documentation of the `csp` crate.
    pub fn os(self) -> Result<Process<R>, RunError>
    where
        R: serde::Serialize + serde::de::DeserializeOwned,
    {
        let name = self.name.to_string();
        let refuse = |reason: String| RunError::Placement {
            process: name.clone(),
            reason,
        };
        let job = self.work.placement().map_err(refuse)?;
        match crate::registry::lookup(job.name) {
            None => {
                return Err(refuse(
                    "it is not in this executable's registry".to_string(),
                ));
            }
            Some(entry) if entry.fingerprint != job.fingerprint => {
                return Err(refuse(
                    "a different process is registered under its name".to_string(),
                ));
            }
            Some(_) => {}
        }
        let placed = name.clone();
        Ok(Process {
            name: self.name,
            work: Box::new(Closure(move || {
                crate::placement::run_in_child(&placed, job).unwrap_or_else(|error| fail(error))
            })),
            ends: self.ends,
            propagate: self.propagate,
            ending: self.ending,
            // The process runs, and passes its ending on, in the child.
            propagates_in_body: true,
            // Waiting for a child is a thread's job.
            lightweight: false,
            form: Form::Placed,
        })
    }

    /// Runs the process on a thread of its own and waits at most `timeout` for it.
    ///
    /// Meant for tests and supervisors: a process that does not finish in time is left
    /// running, detached.
    ///
    /// # Errors
    ///
    /// [`RunError::TimedOut`] if it did not finish in time; otherwise as [`run`](Process::run).
    pub fn run_timeout(self, timeout: Duration) -> Result<R, RunError> {
        self.spawn().join_timeout(timeout)
    }
}

impl<R> fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("ends", &self.ends)
            .field("propagate", &self.propagate)
            .finish_non_exhaustive()
    }
}

fn thread_name(process: &str) -> String {
    // Linux shows 15 bytes of a thread name; keep the most specific part.
    process.rsplit("::").next().unwrap_or(process).to_string()
}

/// Starts `task` as the lightweight process `name` (counted in the network from now), on the
/// pool through `spawn`, and hands its outcome (a panic caught) to `done`.
fn start_task<R: Send + 'static>(
    name: Cow<'static, str>,
    ends: EndSet,
    task: BoxFuture<'static, R>,
    spawn: fn(BoxFuture<'static, ()>),
    done: impl FnOnce(thread::Result<R>) + Send + 'static,
) {
    let actor = deadlock::arrive_task(name, ends);
    spawn(Box::pin(async move {
        let outcome =
            deadlock::ActingFor::new(Arc::clone(&actor), AssertUnwindSafe(task).catch_unwind())
                .await;
        // Its writes ahead are carried out before anyone learns it ended.
        crate::remote::flush_writes_ahead();
        // Whoever waits is woken (and counted) before this process is gone.
        done(outcome);
        deadlock::depart(&actor);
    }));
}

/// Starts a pattern's server, `body`, as the lightweight process `name`: a thread that
/// carries out a remote thread's requests runs it itself when it hands it one (see
/// [`executor::spawn_served`](crate::executor::spawn_served)). A panic in it is reported on
/// standard error: its clients then see the server gone.
pub(crate) fn start_server(name: String, body: BoxFuture<'static, ()>) {
    start_task(
        Cow::Owned(name.clone()),
        EndSet::new(),
        body,
        crate::executor::spawn_served,
        move |outcome| {
            if let Err(payload) = outcome {
                eprintln!("csp: {name} panicked: {}", panic_message(&*payload));
            }
        },
    );
}

/// Unwinds out of a process's body so that [`Process::run`] reports `error` unchanged.
pub(crate) fn fail(error: RunError) -> ! {
    panic::resume_unwind(Box::new(error))
}

/// The message a panic carried.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Turns a panic payload into the error a composition reports.
pub(crate) fn run_error_from_panic(process: &str, payload: Box<dyn Any + Send>) -> RunError {
    // A nested composition that failed unwinds with its own error: pass it on unchanged.
    let payload = match payload.downcast::<RunError>() {
        Ok(error) => return *error,
        Err(payload) => payload,
    };
    RunError::Panicked {
        process: process.to_string(),
        message: panic_message(&*payload),
    }
}

/// A process started in the background by [`Process::spawn`] or [`Spawn`](crate::Spawn).
///
/// Dropping the handle detaches the process; it runs on.
#[derive(Debug)]
pub struct SpawnHandle<R> {
    name: String,
    receiver: mpsc::Receiver<Result<R, RunError>>,
    thread: Option<thread::JoinHandle<()>>,
    finish: Arc<Finish>,
    /// The deadlock monitor's count when the process started.
    generation: u64,
}

/// Whether a process has finished, and who waits for it (for the deadlock monitor).
#[derive(Debug, Default)]
pub(crate) struct Finish {
    finished: AtomicBool,
    waiter: deadlock::Slot,
}

impl Finish {
    /// The process finished: its joiner (if blocked) counts as running again.
    pub(crate) fn done(&self) {
        self.finished.store(true, Ordering::SeqCst);
        self.waiter.release();
    }

    /// Counts the current actor as blocked waiting for `process` until [`done`](Finish::done).
    pub(crate) fn wait_for(&self, process: &str) -> Option<deadlock::Blocked> {
        // A join inside a task: the task it woke last must not wait for it (it may be the
        // very process joined).
        crate::executor::blocking();
        deadlock::block(
            || Some(deadlock::Waiting::Join(process.to_string())),
            |actor| self.waiter.put(actor),
            || !self.finished.load(Ordering::SeqCst),
            None,
        )
    }
}

/// `result`, or the deadlock that ended the run if one was declared since `generation`.
pub(crate) fn deadlocked_since<R>(
    generation: u64,
    result: Result<R, RunError>,
) -> Result<R, RunError> {
    match deadlock::declared_since(generation) {
        Some(report) => Err(RunError::Deadlock {
            report: report.to_string(),
        }),
        None => result,
    }
}

impl<R> SpawnHandle<R> {
    /// The process's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the process to finish and returns its result.
    ///
    /// # Errors
    ///
    /// [`RunError::Panicked`] if it panicked.
    pub fn join(mut self) -> Result<R, RunError> {
        let blocked = self.finish.wait_for(&self.name);
        let result = self.receiver.recv().unwrap_or_else(|_| Err(self.lost()));
        drop(blocked);
        self.reap();
        deadlocked_since(self.generation, result)
    }

    /// Waits at most `timeout` for the process to finish.
    ///
    /// # Errors
    ///
    /// [`RunError::TimedOut`] if it is still running (it is left running, detached);
    /// otherwise as [`join`](SpawnHandle::join).
    pub fn join_timeout(mut self, timeout: Duration) -> Result<R, RunError> {
        // Not counted as blocked: with its time up, the joiner may still act (poison what it
        // waited for, say), so a network with a timed join pending is only slow.
        crate::executor::blocking();
        match self.receiver.recv_timeout(timeout) {
            Ok(result) => {
                self.reap();
                deadlocked_since(self.generation, result)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(RunError::TimedOut {
                process: self.name.clone(),
                after: timeout,
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.lost()),
        }
    }

    /// Whether the process has finished (its result is waiting to be joined).
    pub fn is_finished(&self) -> bool {
        self.thread
            .as_ref()
            .is_none_or(thread::JoinHandle::is_finished)
    }

    fn reap(&mut self) {
        if let Some(thread) = self.thread.take() {
            // The thread only sends the result and ends; it cannot panic after that.
            let _ = thread.join();
        }
    }

    fn lost(&self) -> RunError {
        RunError::Panicked {
            process: self.name.clone(),
            message: "the process's thread ended without a result".to_string(),
        }
    }
}
