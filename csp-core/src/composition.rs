//! Compositions: [`Parallel`], [`Sequence`] and [`Spawn`].
//!
//! A composition of processes is itself a [`Process`], so compositions nest: a `Parallel` of
//! `Sequence`s of `Parallel`s is written as it reads. Results come back in the order the
//! processes were given, whatever order they finished in.
//!
//! If a process panics, its channel ends are poisoned, the other processes of a `Parallel`
//! are still waited for (they wind down through the poison), and the composition reports the
//! first failed process in order. A failure inside a nested composition is reported as is,
//! naming the process that failed, not the composition around it.
//!
//! # Examples
//!
//! ```
//! use csp_core::{Parallel, Process, Sequence};
//!
//! let setup = Sequence::tuple((Process::new("a", || 1), Process::new("b", || 2)));
//! let workers = Parallel::of((0..3).map(|i| Process::new("worker", move || i * 10)));
//! let (steps, results) = Parallel::tuple((setup, workers)).run().unwrap();
//! assert_eq!(steps, (1, 2));
//! assert_eq!(results, [0, 10, 20]);
//! ```

use crate::error::RunError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::picture::Shape;
use crate::process::{Finish, Process, SpawnHandle, fail};

/// Runs processes at once and waits for all of them.
///
/// With the `parallel!` macro (`parallel![a, b, c]`) the processes may have different result
/// types; [`Parallel::of`] takes any number of processes of one result type.
#[derive(Debug)]
pub struct Parallel;

/// Runs processes one after another, each after the previous one finished.
///
/// If one fails, the ones after it do not run (their channel ends are dropped, which retires
/// them) and the failure is reported.
#[derive(Debug)]
pub struct Sequence;

/// Starts a process in the background; see [`Process::spawn`].
#[derive(Debug)]
pub struct Spawn;

/// The first error in order, after every process was waited for.
fn first_error<R>(
    results: impl IntoIterator<Item = Result<R, RunError>>,
) -> Result<Vec<R>, RunError> {
    let mut values = Vec::new();
    let mut failure = None;
    for result in results {
        match result {
            Ok(value) => values.push(value),
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    failure.map_or(Ok(values), Err)
}

impl Parallel {
    /// A process running every process of `processes` at once; its result is their results in
    /// order.
    pub fn of<R: Send + 'static>(
        processes: impl IntoIterator<Item = Process<R>>,
    ) -> Process<Vec<R>> {
        let processes: Vec<Process<R>> = processes.into_iter().collect();
        let parts = processes.iter().map(Process::shape).collect();
        Process::new("Parallel", move || {
            Self::run_all(processes).unwrap_or_else(|error| fail(error))
        })
        .composed_of("Parallel", parts)
    }

    /// Runs every process at once (the last one on the calling thread) and waits for all.
    fn run_all<R: Send + 'static>(mut processes: Vec<Process<R>>) -> Result<Vec<R>, RunError> {
        if processes.iter().all(Process::is_lightweight) {
            return Self::run_tasks(processes);
        }
        let Some(last) = processes.pop() else {
            return Ok(Vec::new());
        };
        let handles: Vec<SpawnHandle<R>> = processes.into_iter().map(Process::spawn).collect();
        let last = if last.is_lightweight() {
            last.spawn().join()
        } else {
            last.run()
        };
        first_error(handles.into_iter().map(SpawnHandle::join).chain([last]))
    }

    /// Runs lightweight processes as tasks, collecting their results in one place rather than
    /// through a handle each (a ring of a million processes is a million results).
    fn run_tasks<R: Send + 'static>(processes: Vec<Process<R>>) -> Result<Vec<R>, RunError> {
        struct Collected<R> {
            results: Mutex<Vec<Option<Result<R, RunError>>>>,
            remaining: AtomicUsize,
            waiter: thread::Thread,
            finish: Finish,
        }
        let count = processes.len();
        let collected = Arc::new(Collected {
            results: Mutex::new((0..count).map(|_| None).collect()),
            remaining: AtomicUsize::new(count),
            waiter: thread::current(),
            finish: Finish::default(),
        });
        for (index, process) in processes.into_iter().enumerate() {
            let collected = Arc::clone(&collected);
            process.start(move |result| {
                collected
                    .results
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())[index] = Some(result);
                if collected.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    collected.finish.done();
                    collected.waiter.unpark();
                }
            });
        }
        let blocked = collected.finish.wait_for("Parallel");
        while collected.remaining.load(Ordering::Acquire) > 0 {
            thread::park();
        }
        drop(blocked);
        let results = std::mem::take(
            &mut *collected
                .results
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        first_error(
            results
                .into_iter()
                .map(|result| result.expect("every task reports before the count reaches zero")),
        )
    }

    /// A process running the processes of a tuple at once; its result is the tuple of their
    /// results. `parallel![a, b]` is `Parallel::tuple((a, b))`.
    pub fn tuple<T: ProcessTuple>(processes: T) -> Process<T::Output> {
        let parts = processes.shapes();
        Process::new("Parallel", move || {
            processes.run_parallel().unwrap_or_else(|error| fail(error))
        })
        .composed_of("Parallel", parts)
    }
}

impl Sequence {
    /// A process running the processes of `processes` one after another; its result is their
    /// results in order.
    pub fn of<R: Send + 'static>(
        processes: impl IntoIterator<Item = Process<R>>,
    ) -> Process<Vec<R>> {
        let processes: Vec<Process<R>> = processes.into_iter().collect();
        let parts = processes.iter().map(Process::shape).collect();
        Process::new("Sequence", move || {
            processes
                .into_iter()
                .map(Process::run)
                .collect::<Result<Vec<R>, RunError>>()
                .unwrap_or_else(|error| fail(error))
        })
        .composed_of("Sequence", parts)
    }

    /// A process running the processes of a tuple one after another.
    /// `sequence![a, b]` is `Sequence::tuple((a, b))`.
    pub fn tuple<T: ProcessTuple>(processes: T) -> Process<T::Output> {
        let parts = processes.shapes();
        Process::new("Sequence", move || {
            processes.run_sequence().unwrap_or_else(|error| fail(error))
        })
        .composed_of("Sequence", parts)
    }
}

impl Spawn {
    /// Starts `process` in the background.
    ///
    /// # Examples
    ///
    /// ```
    /// use csp_core::{Process, Spawn};
    /// use std::time::Duration;
    ///
    /// let handle = Spawn::start(Process::new("background", || "done"));
    /// assert_eq!(handle.join_timeout(Duration::from_secs(5)).unwrap(), "done");
    /// ```
    pub fn start<R: Send + 'static>(process: Process<R>) -> SpawnHandle<R> {
        process.spawn()
    }
}

/// A tuple of processes, as taken by [`Parallel::tuple`] and [`Sequence::tuple`].
pub trait ProcessTuple: Send + 'static {
    /// The tuple of the processes' results.
    type Output: Send + 'static;
    #[doc(hidden)]
    fn run_parallel(self) -> Result<Self::Output, RunError>;
    #[doc(hidden)]
    fn run_sequence(self) -> Result<Self::Output, RunError>;
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn shapes(&self) -> Vec<Shape>;
}

macro_rules! process_tuple {
    ($($result:ident $process:ident $handle:ident),+ ; $last_result:ident $last:ident) => {
        impl<$($result: Send + 'static,)+ $last_result: Send + 'static> ProcessTuple
            for ($(Process<$result>,)+ Process<$last_result>)
        {
            type Output = ($($result,)+ $last_result);

            fn run_parallel(self) -> Result<Self::Output, RunError> {
                let ($($process,)+ $last) = self;
                $(let $handle = $process.spawn();)+
                // The last runs on this thread, unless it is a task: then this thread would
                // stand in for the executor, and every communication with it would cross.
                let $last = if $last.is_lightweight() { $last.spawn().join() } else { $last.run() };
                $(let $process = $handle.join();)+
                let mut failure = None;
                $(let $process = $process.map_err(|error| { failure.get_or_insert(error); });)+
                let $last = $last.map_err(|error| { failure.get_or_insert(error); });
                match failure {
                    Some(error) => Err(error),
                    None => Ok(($($process.ok().expect("checked"),)+ $last.ok().expect("checked"))),
                }
            }

            fn run_sequence(self) -> Result<Self::Output, RunError> {
                let ($($process,)+ $last) = self;
                Ok(($($process.run()?,)+ $last.run()?))
            }

            #[allow(private_interfaces)]
            fn shapes(&self) -> Vec<Shape> {
                let ($($process,)+ $last) = self;
                vec![$($process.shape(),)+ $last.shape()]
            }
        }
    };
}

impl<A: Send + 'static> ProcessTuple for (Process<A>,) {
    type Output = (A,);

    fn run_parallel(self) -> Result<(A,), RunError> {
        Ok((self.0.run()?,))
    }

    fn run_sequence(self) -> Result<(A,), RunError> {
        Ok((self.0.run()?,))
    }

    #[allow(private_interfaces)]
    fn shapes(&self) -> Vec<Shape> {
        vec![self.0.shape()]
    }
}

process_tuple!(A a ha; B b);
process_tuple!(A a ha, B b hb; C c);
process_tuple!(A a ha, B b hb, C c hc; D d);
process_tuple!(A a ha, B b hb, C c hc, D d hd; E e);
process_tuple!(A a ha, B b hb, C c hc, D d hd, E e he; F f);
process_tuple!(A a ha, B b hb, C c hc, D d hd, E e he, F f hf; G g);
process_tuple!(A a ha, B b hb, C c hc, D d hd, E e he, F f hf, G g hg; H h);
process_tuple!(A a ha, B b hb, C c hc, D d hd, E e he, F f hf, G g hg, H h hh; I i);
process_tuple!(A a ha, B b hb, C c hc, D d hd, E e he, F f hf, G g hg, H h hh, I i hi; J j);
process_tuple!(A a ha, B b hb, C c hc, D d hd, E e he, F f hf, G g hg, H h hh, I i hi, J j hj; K k);
process_tuple!(A a ha, B b hb, C c hc, D d hd, E e he, F f hf, G g hg, H h hh, I i hi, J j hj, K k hk; L l);

/// Runs processes at once: `parallel![a, b, c]` is a process whose result is the tuple of
/// theirs. Up to twelve processes; use [`Parallel::of`] for more of one type.
///
/// # Examples
///
/// ```
/// use csp_core::{Process, parallel};
///
/// let (a, b) = parallel![Process::new("a", || 1), Process::new("b", || "two")].run().unwrap();
/// assert_eq!((a, b), (1, "two"));
/// ```
#[macro_export]
macro_rules! parallel {
    ($($process:expr),+ $(,)?) => {
        $crate::Parallel::tuple(($($process,)+))
    };
}

/// Runs processes one after another: `sequence![a, b]` is a process whose result is the tuple
/// of theirs.
///
/// # Examples
///
/// ```
/// use csp_core::{Process, sequence};
///
/// let (a, b) = sequence![Process::new("a", || 1), Process::new("b", || 2)].run().unwrap();
/// assert_eq!(a + b, 3);
/// ```
#[macro_export]
macro_rules! sequence {
    ($($process:expr),+ $(,)?) => {
        $crate::Sequence::tuple(($($process,)+))
    };
}
