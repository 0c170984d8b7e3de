//! `multiprocessing.Pool`: a fixed number of workers, on threads or in OS processes, fed
//! items by a dispatcher.
//!
//! Each worker is a process of yours (write it with [`serve_jobs`]) with a private pair of
//! channels to the dispatcher, so a worker that dies poisons only its own pair: the
//! dispatcher reports the item it was working on as failed, with the reason, and starts a
//! replacement from the same factory. A panic in the job function is caught in the worker and
//! reported for its item; the worker goes on.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::service::Wire;
use crate::alternation::Alternation;
use crate::channel::{Channel, Reader, Writer};
use crate::error::{ChannelError, RunError, SelectError};
use crate::guard::{Guard, InputGuard};
use crate::process::{Process, SpawnHandle};

/// Why an item of a [`Pool`] has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PoolError {
    /// The job function panicked on this item.
    #[error("the job panicked: {0}")]
    Panicked(String),
    /// The worker died while working on this item (its OS process was killed, say); it was
    /// replaced.
    #[error("the worker died: {0}")]
    WorkerDied(String),
    /// No worker could be started.
    #[error("no worker could be started: {0}")]
    NoWorkers(String),
}

/// What a worker sends back for one item.
pub type JobResult<O> = Result<O, PoolError>;

/// The body of a pool worker: applies `job` to every item read from `jobs` and writes each
/// result to `results`, until the pool closes `jobs`. A panic in `job` is reported for its
/// item as [`PoolError::Panicked`].
///
/// # Errors
///
/// A channel error if the pool went away while a result was being written.
pub fn serve_jobs<I: Wire, O: Wire>(
    jobs: Reader<I>,
    results: Writer<JobResult<O>>,
    job: impl Fn(I) -> O,
) -> Result<(), ChannelError> {
    for item in &jobs {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(item)))
            .map_err(|panic| PoolError::Panicked(crate::process::panic_message(&*panic)));
        results.write(outcome).map_err(ChannelError::from)?;
    }
    Ok(())
}

/// Makes one worker process from its two channel ends. Return the process placed as you
/// want it: as is for a thread, `.os()?` for an OS process.
pub type WorkerFactory<I, O, R> =
    Box<dyn Fn(Reader<I>, Writer<JobResult<O>>) -> Result<Process<R>, RunError> + Send>;

/// Where an item's result goes: tagged with the item's index.
type Reply<O> = Writer<(usize, JobResult<O>)>;

struct Task<I, O> {
    index: usize,
    item: I,
    reply: Reply<O>,
}

struct Worker<I, O, R> {
    jobs: Writer<I>,
    results: Reader<JobResult<O>>,
    running: SpawnHandle<R>,
    busy: Option<(usize, Reply<O>)>,
}

/// A pool of worker processes (`multiprocessing.Pool`).
///
/// # Examples
///
/// ```
/// use csp_core::patterns::{Pool, serve_jobs};
/// use csp_core::{Process, Reader, Writer};
///
/// // A worker on a thread; with `#[process]` and `.os()?` it can be an OS process instead.
/// fn squarer(jobs: Reader<u64>, results: Writer<Result<u64, csp_core::patterns::PoolError>>) -> Process<()> {
///     Process::new("squarer", move || {
///         let _ = serve_jobs(jobs, results, |x: u64| x * x);
///     })
/// }
///
/// let pool = Pool::new(2, |jobs, results| Ok(squarer(jobs, results))).unwrap();
/// let squares: Vec<u64> = pool.map(0..5).into_iter().map(Result::unwrap).collect();
/// assert_eq!(squares, [0, 1, 4, 9, 16]);
/// assert_eq!(pool.apply(7).get(), Ok(49));
/// ```
pub struct Pool<I, O> {
    tasks: Option<Writer<Task<I, O>>>,
    dispatcher: Option<crate::process::SpawnHandle<()>>,
    workers: usize,
}

/// The pending result of [`Pool::apply`] (`AsyncResult`).
pub struct Pending<O> {
    result: Reader<(usize, JobResult<O>)>,
}

impl<O: Send + 'static> Pending<O> {
    /// Waits for the result (`get()`).
    ///
    /// # Errors
    ///
    /// The item's [`PoolError`].
    pub fn get(self) -> JobResult<O> {
        self.result
            .read()
            .map_or_else(|_| Err(shut_down()), |(_, result)| result)
    }

    /// Waits at most `timeout`; `None` if the result is not there yet (`get(timeout)`).
    pub fn get_timeout(&self, timeout: Duration) -> Option<JobResult<O>> {
        match self.result.read_timeout(timeout) {
            Ok((_, result)) => Some(result),
            Err(crate::ReadTimeoutError::Timeout { .. }) => None,
            Err(_) => Some(Err(shut_down())),
        }
    }
}

impl<I: Wire, O: Wire> Pool<I, O> {
    /// Starts `workers` workers made by `factory`.
    ///
    /// # Errors
    ///
    /// The first error `factory` returns.
    pub fn new<R: Send + 'static>(
        workers: usize,
        factory: impl Fn(Reader<I>, Writer<JobResult<O>>) -> Result<Process<R>, RunError>
        + Send
        + 'static,
    ) -> Result<Pool<I, O>, RunError> {
        let factory: WorkerFactory<I, O, R> = Box::new(factory);
        let started = (0..workers.max(1))
            .map(|_| start_worker(&factory))
            .collect::<Result<Vec<_>, _>>()?;
        let tasks = Channel::named("pool");
        let reader = tasks.reader();
        let dispatcher = Process::new("pool dispatcher", move || {
            dispatch(reader, started, &factory)
        })
        .spawn();
        Ok(Pool {
            tasks: Some(tasks.writer()),
            dispatcher: Some(dispatcher),
            workers: workers.max(1),
        })
    }

    /// How many workers the pool keeps.
    pub fn workers(&self) -> usize {
        self.workers
    }

    fn submit(&self, index: usize, item: I, reply: Reply<O>) {
        let task = Task { index, item, reply };
        if let Some(tasks) = &self.tasks
            && let Err(error) = tasks.write(task)
        {
            let task = error.into_value();
            let _ = task.reply.write((index, Err(shut_down())));
        }
    }

    /// Applies the job to one item in a worker; returns at once (`apply_async`).
    pub fn apply(&self, item: I) -> Pending<O> {
        let result = Channel::buffered(1);
        self.submit(0, item, result.writer());
        Pending {
            result: result.reader(),
        }
    }

    /// Applies the job to every item, spread over the workers; results in the items' order.
    pub fn map(&self, items: impl IntoIterator<Item = I>) -> Vec<JobResult<O>> {
        let pending: Vec<Pending<O>> = items.into_iter().map(|item| self.apply(item)).collect();
        pending.into_iter().map(Pending::get).collect()
    }

    /// Applies the job to every item; yields `(index, result)` as each finishes
    /// (`imap_unordered`).
    pub fn map_unordered(
        &self,
        items: impl IntoIterator<Item = I>,
    ) -> impl Iterator<Item = (usize, JobResult<O>)> {
        let items: Vec<I> = items.into_iter().collect();
        let count = items.len();
        // Room for every result, so the dispatcher never waits for this iterator.
        let results = Channel::buffered(count.max(1));
        // Results of the first items can come back while later ones are still submitted:
        // without a writer held until all are submitted, the last result delivered could
        // drop the last writer and retire the channel before the next item's writer exists.
        let submitting = results.writer();
        for (index, item) in items.into_iter().enumerate() {
            self.submit(index, item, submitting.clone());
        }
        drop(submitting);
        let reader = results.reader();
        (0..count).map(move |_| {
            reader
                .read()
                .unwrap_or_else(|_| (usize::MAX, Err(shut_down())))
        })
    }
}

fn shut_down() -> PoolError {
    PoolError::WorkerDied("the pool shut down".into())
}

fn start_worker<I: Wire, O: Wire, R: Send + 'static>(
    factory: &WorkerFactory<I, O, R>,
) -> Result<Worker<I, O, R>, RunError> {
    let (jobs, results) = (Channel::named("pool jobs"), Channel::named("pool results"));
    let process = factory(jobs.reader(), results.writer())?;
    Ok(Worker {
        jobs: jobs.writer(),
        results: results.reader(),
        running: process.spawn(),
        busy: None,
    })
}

/// How long a dead worker's end may take to be reported, before its item is failed anyway.
const REAP_LIMIT: Duration = Duration::from_secs(5);

fn dispatch<I: Wire, O: Wire, R: Send + 'static>(
    tasks: Reader<Task<I, O>>,
    mut workers: Vec<Worker<I, O, R>>,
    factory: &WorkerFactory<I, O, R>,
) {
    let mut backlog: VecDeque<Task<I, O>> = VecDeque::new();
    let mut open = true;
    let mut alternation = Alternation::fair();
    loop {
        // Hand queued items to idle workers.
        for worker in workers.iter_mut().filter(|w| w.busy.is_none()) {
            let Some(task) = backlog.pop_front() else {
                break;
            };
            match worker.jobs.write(task.item) {
                Ok(()) => worker.busy = Some((task.index, task.reply)),
                Err(error) => backlog.push_front(Task {
                    item: error.into_value(),
                    ..task
                }),
            }
        }
        if !open && backlog.is_empty() && workers.iter().all(|w| w.busy.is_none()) {
            break;
        }
        let busy: Vec<usize> = (0..workers.len())
            .filter(|&i| workers[i].busy.is_some())
            .collect();
        let chosen = {
            let mut task_guard = InputGuard::new(&tasks).when(open);
            let mut result_guards: Vec<_> = busy
                .iter()
                .map(|&i| InputGuard::new(&workers[i].results))
                .collect();
            let mut guards: Vec<&mut dyn Guard> = vec![&mut task_guard];
            guards.extend(result_guards.iter_mut().map(|g| g as &mut dyn Guard));
            match alternation.select(&mut guards) {
                Ok(0) => Ok(task_guard.take().map(Ok)),
                Ok(k) => Ok(result_guards[k - 1]
                    .take()
                    .map(|result| Err((busy[k - 1], Ok(result))))),
                Err(SelectError::Channel { guard: 0, .. }) => Err(()),
                Err(SelectError::Channel { guard, error }) => {
                    Ok(Some(Err((busy[guard - 1], Err(error)))))
                }
                Err(SelectError::NoEnabledGuard) => Err(()),
            }
        };
        match chosen {
            Err(()) => open = false,
            Ok(None) => {}
            Ok(Some(Ok(task))) => backlog.push_back(task),
            Ok(Some(Err((index, Ok(result))))) => {
                if let Some((item, reply)) = workers[index].busy.take() {
                    let _ = reply.write((item, result));
                }
            }
            Ok(Some(Err((index, Err(_))))) => {
                // The worker is gone: fail its item with the reason, and replace it.
                let replacement = start_worker(factory);
                let dead = match replacement {
                    Ok(fresh) => std::mem::replace(&mut workers[index], fresh),
                    Err(error) => {
                        let dead = workers.remove(index);
                        if workers.is_empty() {
                            fail_all(&mut backlog, &error.to_string());
                            open = false;
                        }
                        dead
                    }
                };
                let reason = match dead.running.join_timeout(REAP_LIMIT) {
                    Err(error) => error.to_string(),
                    Ok(_) => "it ended while working on the item".to_string(),
                };
                if let Some((item, reply)) = dead.busy {
                    let _ = reply.write((item, Err(PoolError::WorkerDied(reason))));
                }
            }
        }
    }
    let joins: Vec<SpawnHandle<R>> = workers
        .into_iter()
        .map(|worker| {
            drop(worker.jobs); // the worker's loop ends
            worker.running
        })
        .collect();
    for running in joins {
        let _ = running.join_timeout(REAP_LIMIT);
    }
}

fn fail_all<I, O>(backlog: &mut VecDeque<Task<I, O>>, why: &str) {
    for task in backlog.drain(..) {
        let _ = task
            .reply
            .write((task.index, Err(PoolError::NoWorkers(why.to_string()))));
    }
}

impl<I, O> Drop for Pool<I, O> {
    fn drop(&mut self) {
        drop(self.tasks.take()); // the dispatcher finishes what it has, then stops
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.join();
        }
    }
}

impl<I, O> fmt::Debug for Pool<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}
