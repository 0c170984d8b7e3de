//! Where lightweight processes run: a pool with a thread per CPU, shared by every task of
//! this OS process.
//!
//! A lightweight process (from `#[process] async fn`) is spawned onto the pool when it is
//! composed; while it awaits a channel it holds no thread, so a network of a million of them
//! fits in memory, and the pool's threads run whichever are ready, on every core. Tasks are
//! `async-task`'s; the queue they wait in is `concurrent-queue`'s. What is ours is the policy,
//! which is what communicating processes need:
//!
//! - **A task woken by the running one runs next, on the same thread** (a *next* slot, as Go
//!   and tokio have). In a process network nearly every wake-up is a hand-over: the writer
//!   that completes a read wakes the reader and is about to wait itself. Queuing the reader
//!   and waking an idle thread on another CPU for it (what `async-executor` does, which this
//!   replaced) costs a futex wake and a cold cache each time: commstime with tasks took 1.48
//!   to 1.60 us per loop on two CPUs that way, 1.20 to 1.36 us with the slot (pinned to one
//!   CPU 1.15 to 1.21 against 0.95), a hop of a ring of 100,000 tasks 512 to 537 ns against
//!   418 to 444 ns.
//! - **Work spreads when there is more of it than one thread runs**: a spawn and a wake-up
//!   from outside the pool go to the shared queue and wake an idle thread; so does the task
//!   in the slot once its waker has begun [`OPERATIONS_BEFORE_SHARING`] more channel
//!   operations without waiting (a source streaming into a buffer: between two tasks,
//!   64 KiB messages went from 38,700 to 239,000 a second, 8-byte ones from 20 to 7.7 million,
//!   which one CPU had batched); tasks displaced from the slot wake another thread once more
//!   than one waits; a thread that takes from the queue and finds more wakes another.
//! - **Nothing starves**: after [`NEXT_IN_A_ROW`] tasks from its slot, a thread takes from the
//!   shared queue first.
//!
//! Each thread tells the deadlock monitor when it runs out of tasks and when it wakes again,
//! which is how tasks are counted (see [`deadlock`](crate::deadlock)). A task that blocks its
//! thread in one of csp's blocking calls (a channel operation, a join, inside an `async fn`)
//! hands the task in its slot to the queue first, so that another thread can run it; one
//! that blocks some other way (a sleep, a lock) holds that one task back until it returns.
//!
//! - **A server's task runs on the thread that brings it a request.** A pattern's client
//!   during a call, and the thread that carries out a remote thread's operations (see
//!   [`node`](crate::node)), *help*: a pattern's server task ([`spawn_served`]) that they
//!   wake waits in a slot of their own and runs on them, inline, when they would wait next
//!   (for the server's answer) or, for the latter, before it takes the next request. A call
//!   from a child to a `Manager`'s list then costs no hand-over between threads in the
//!   parent, where it cost two (a context switch each on a machine with fewer CPUs than busy
//!   threads): 4.3 to 1.6 us. Only servers, whose steps are short and never wait, are run
//!   so: a user's task never holds up the thread that woke it.
//!
//! (`futures`' `ThreadPool` was measured first: 6.2 us per communication in commstime on two
//! CPUs, its idle threads sleeping on a condition variable at once.)

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};

use async_task::Runnable;
use concurrent_queue::ConcurrentQueue;
use futures::future::BoxFuture;

/// How many tasks a thread runs from its next slot in a row before it takes one from the
/// shared queue: two tasks that keep waking each other cannot shut out the rest.
const NEXT_IN_A_ROW: u32 = 64;

/// The pool: its shared queue and its sleeping threads.
struct Pool {
    queue: ConcurrentQueue<Runnable>,
    sleepers: Mutex<Vec<Arc<Sleeper>>>,
    /// How many threads sleep (the length of `sleepers`, read without its lock).
    sleeping: AtomicUsize,
}

/// A pool thread, for whoever wakes it.
struct Sleeper {
    thread: Thread,
    woken: AtomicBool,
}

thread_local! {
    /// The pool this thread serves, if it is a pool's thread.
    static POOL_THREAD: Cell<Option<&'static Pool>> = const { Cell::new(None) };
    /// The task this pool thread runs next: the last one woken by the task it runs.
    static NEXT: Cell<Option<Runnable>> = const { Cell::new(None) };
    /// Channel operations the running task began since the slot was filled.
    static SINCE_FILLED: Cell<u32> = const { Cell::new(0) };
    /// Whether this thread helps: runs the served tasks it wakes itself (see [`Helping`]).
    static HELPING: Cell<bool> = const { Cell::new(false) };
    /// The served task this helping thread woke last and runs next.
    static HELPED: Cell<Option<(Runnable, &'static Pool)>> = const { Cell::new(None) };
    /// Whether this helping thread may run its served task when it is about to wait.
    static HELP_WHILE_WAITING: Cell<bool> = const { Cell::new(false) };
    /// While this thread runs a served task inline: the requests that task has begun to
    /// handle in this run (see [`take_turn`]).
    static INLINE: Cell<Option<u32>> = const { Cell::new(None) };
    /// While this thread carries out another OS process's request (see [`for_others`]).
    static FOR_OTHERS: Cell<bool> = const { Cell::new(false) };
}

/// Whether what this thread wakes must go to the shared queue, not to a slot of this
/// thread: it runs a served task inline (see [`run_helped`]), or serves another OS
/// process's request inside a wait of its own (see [`for_others`]), and is busy with the
/// wait it interrupted.
fn wakes_go_to_queue() -> bool {
    INLINE.with(Cell::get).is_some() || FOR_OTHERS.with(Cell::get)
}

/// Runs `body`, a request of another OS process carried out inside a wait of this thread
/// (see [`mirror`](crate::mirror)): what it wakes, a pattern's server say, goes to the shared
/// queue. Left in a slot of this thread, it would wait until this thread's own wait ended,
/// which may need that very server.
pub(crate) fn for_others<R>(body: impl FnOnce() -> R) -> R {
    with_flag(&FOR_OTHERS, body)
}

/// Runs `body` with the thread's `flag` set, and puts it back as it was afterwards (also
/// if `body` panics).
fn with_flag<R>(flag: &'static std::thread::LocalKey<Cell<bool>>, body: impl FnOnce() -> R) -> R {
    struct Restore(&'static std::thread::LocalKey<Cell<bool>>, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            self.0.with(|flag| flag.set(self.1));
        }
    }
    let _restore = Restore(flag, flag.with(|flag| flag.replace(true)));
    body()
}

/// Channel operations a running task may begin after filling its thread's slot before the
/// task in the slot is handed to the other threads. A hand-over ends in one: the waker's next
/// operation is the wait that lets the slot run (commstime's delta writes once more first,
/// which fills the slot anew). A task still going after two is streaming (a source writing
/// into a buffer): what it woke runs beside it, on another thread.
const OPERATIONS_BEFORE_SHARING: u32 = 2;

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::start(thread::available_parallelism().map_or(2, usize::from)))
}

impl Pool {
    /// A pool of `threads` threads, for the life of the OS process.
    fn start(threads: usize) -> &'static Pool {
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            queue: ConcurrentQueue::unbounded(),
            sleepers: Mutex::new(Vec::new()),
            sleeping: AtomicUsize::new(0),
        }));
        for n in 0..threads {
            crate::deadlock::executor_thread_starts();
            thread::Builder::new()
                .name(format!("csp-task-{n}"))
                .spawn(move || pool.serve())
                .expect("starting a thread for lightweight processes");
        }
        pool
    }

    /// Runs `task` on this pool.
    fn spawn(&'static self, task: BoxFuture<'static, ()>) {
        let (runnable, task) = async_task::spawn(task, move |runnable| self.schedule(runnable));
        task.detach();
        self.share(runnable);
    }

    /// Runs `task` on this pool, or on a helping thread that wakes it (see [`Helping`]).
    fn spawn_served(&'static self, task: BoxFuture<'static, ()>) {
        let (runnable, task) = async_task::spawn(task, move |runnable| {
            if HELPING.with(Cell::get) && !wakes_go_to_queue() {
                if let Some((displaced, pool)) =
                    HELPED.with(|helped| helped.replace(Some((runnable, self))))
                {
                    pool.share(displaced);
                }
            } else {
                self.schedule(runnable); // to the queue if it yielded its turn inline
            }
        });
        task.detach();
        self.share(runnable);
    }

    /// Where a woken task goes: the waking thread's next slot if it is one of this pool's,
    /// or the shared queue.
    fn schedule(&'static self, runnable: Runnable) {
        if wakes_go_to_queue() {
            return self.share(runnable);
        }
        if POOL_THREAD
            .with(Cell::get)
            .is_some_and(|pool| std::ptr::eq(pool, self))
        {
            SINCE_FILLED.with(|since| since.set(0));
            if let Some(displaced) = NEXT.with(|next| next.replace(Some(runnable))) {
                self.displace(displaced);
            }
        } else {
            self.share(runnable);
        }
    }

    /// Queues `runnable` for any thread, waking a sleeping one for it.
    fn share(&self, runnable: Runnable) {
        self.queue_up(runnable, true);
    }

    /// Queues a task this pool thread displaced from its slot. The thread takes it itself
    /// once its slot is empty, so another thread is woken only when more than one task
    /// waits: a network that forks now and then (commstime's delta wakes two) stays on one
    /// thread, one that fans out spreads.
    fn displace(&self, runnable: Runnable) {
        self.queue_up(runnable, false);
    }

    /// Queues `runnable`, waking a sleeping thread for it if `always`, or else only if
    /// another task waits in the queue too.
    fn queue_up(&self, runnable: Runnable, always: bool) {
        if let Err(error) = self.queue.push(runnable) {
            unreachable!("the pool's queue is never closed: {error}");
        }
        if always || self.queue.len() > 1 {
            // Against a thread that is going to sleep: either it sees this task in the
            // queue when it looks again after listing itself, or this sees it listed.
            fence(Ordering::SeqCst);
            if self.sleeping.load(Ordering::SeqCst) > 0 {
                self.wake_one();
            }
        }
    }

    /// Hands the task in this thread's slot, if any, to the shared queue.
    fn hand_on_slot(&self) {
        if let Some(next) = NEXT.with(Cell::take) {
            self.share(next);
        }
    }

    fn wake_one(&self) {
        let sleeper = {
            let mut sleepers = self.sleepers.lock().unwrap_or_else(|p| p.into_inner());
            let sleeper = sleepers.pop();
            if sleeper.is_some() {
                self.sleeping.fetch_sub(1, Ordering::SeqCst);
            }
            sleeper
        };
        if let Some(sleeper) = sleeper {
            sleeper.woken.store(true, Ordering::Release);
            sleeper.thread.unpark();
        }
    }

    /// A pool thread: runs tasks for ever.
    fn serve(&'static self) {
        // Not an actor: the thread only acts for the tasks it runs.
        crate::deadlock::serve_only();
        POOL_THREAD.with(|pool_thread| pool_thread.set(Some(self)));
        let sleeper = Arc::new(Sleeper {
            thread: thread::current(),
            woken: AtomicBool::new(false),
        });
        let mut in_a_row = 0;
        loop {
            let mut runnable = if in_a_row < NEXT_IN_A_ROW {
                NEXT.with(Cell::take)
            } else {
                None
            };
            if runnable.is_some() {
                in_a_row += 1;
            } else {
                in_a_row = 0;
                self.hand_on_slot(); // its turn is over: it queues like any other
                runnable = self.queue.pop().ok();
                if runnable.is_some() && !self.queue.is_empty() {
                    self.wake_one(); // more than this thread runs: share it
                }
            }
            match runnable {
                Some(runnable) => {
                    runnable.run();
                }
                None => self.sleep(&sleeper),
            }
        }
    }

    /// Sleeps until a task is queued for this thread (or returns at once if one is).
    fn sleep(&self, sleeper: &Arc<Sleeper>) {
        sleeper.woken.store(false, Ordering::SeqCst);
        {
            let mut sleepers = self.sleepers.lock().unwrap_or_else(|p| p.into_inner());
            sleepers.push(Arc::clone(sleeper));
            self.sleeping.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if !self.queue.is_empty() {
            // Queued meanwhile: take it back off the list, unless a waker already did.
            let mut sleepers = self.sleepers.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = sleepers.iter().position(|s| Arc::ptr_eq(s, sleeper)) {
                sleepers.swap_remove(at);
                self.sleeping.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        }
        crate::deadlock::executor_thread_idle();
        while !sleeper.woken.load(Ordering::Acquire) {
            thread::park();
        }
        crate::deadlock::executor_thread_busy();
    }
}

/// Runs `task` on the pool.
pub(crate) fn spawn(task: BoxFuture<'static, ()>) {
    pool().spawn(task);
}

/// Runs `task`, a pattern's server, on the pool; a helping thread that wakes it runs it
/// itself (see [`Helping`]).
pub(crate) fn spawn_served(task: BoxFuture<'static, ()>) {
    pool().spawn_served(task);
}

/// The current thread is about to block: inside a task, the task in its next slot goes to
/// the shared queue, where another thread can run it meanwhile; on a helping thread, the
/// served task it woke runs now (if [`help_while_waiting`] allows) or goes to the queue.
pub(crate) fn blocking() {
    if let Some(pool) = POOL_THREAD.with(Cell::get) {
        pool.hand_on_slot();
    }
    if HELPING.with(Cell::get) {
        if HELP_WHILE_WAITING.with(Cell::get) {
            run_helped();
        } else if let Some((helped, pool)) = HELPED.with(Cell::take) {
            pool.share(helped);
        }
    }
}

/// The current thread, while this lives, helps: a served task (a pattern's server) that it
/// wakes runs on it, inline, at [`run_helped`] or when it is about to wait inside
/// [`help_while_waiting`], instead of on a pool thread. A pattern's client helps during a
/// call, and the thread that carries out a remote thread's requests helps for good: the
/// server handed a request answers it with no hand-over between threads. Dropping the
/// outermost one hands a task still waiting to the pool.
pub(crate) struct Helping {
    outer: bool,
}

impl Helping {
    pub(crate) fn start() -> Helping {
        Helping {
            outer: HELPING.with(|helping| helping.replace(true)),
        }
    }
}

impl Drop for Helping {
    fn drop(&mut self) {
        HELPING.with(|helping| helping.set(self.outer));
        if !self.outer
            && let Some((helped, pool)) = HELPED.with(Cell::take)
        {
            pool.share(helped);
        }
    }
}

/// Runs the served task this helping thread woke, if any, here and now, for one request
/// (see [`take_turn`]). What it wakes meanwhile goes to the pool, and it cannot run another
/// inline. A wait inside it (none of csp's servers waits) uses a selector of its own, so
/// the wait it interrupted is left as it was; the deadlock monitor counts the run as an
/// executor thread's.
pub(crate) fn run_helped() {
    let Some((helped, _)) = HELPED.with(Cell::take) else {
        return;
    };
    struct Resume;
    impl Drop for Resume {
        fn drop(&mut self) {
            INLINE.with(|inline| inline.set(None));
            crate::deadlock::executor_thread_idle();
        }
    }
    crate::deadlock::executor_thread_busy();
    INLINE.with(|inline| inline.set(Some(0)));
    let _resume = Resume;
    crate::wait::Selector::with_nested(|| helped.run());
}

/// Awaited by a served task each time it has taken a request, before it handles it: run
/// inline, it handles the first request of the run at once and leaves the rest to the pool
/// (it goes there holding the request). A helper so serves its own caller and is not kept
/// serving every other client that is waiting meanwhile, which would hold up its own (a
/// connection thread's remote thread, a caller's deadline).
pub(crate) fn take_turn() -> impl std::future::Future<Output = ()> {
    let must_yield = INLINE.with(|inline| match inline.get() {
        Some(0) => {
            inline.set(Some(1));
            false
        }
        Some(_) => true,
        None => false,
    });
    YieldOnce(must_yield)
}

/// Pending once (waking itself first) if told to, then ready.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if std::mem::take(&mut self.0) {
            context.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        std::task::Poll::Ready(())
    }
}

/// Runs `body`, during which this helping thread, about to wait, first runs the served task
/// it woke: a request handed to a server, then a wait for its answer.
pub(crate) fn help_while_waiting<R>(body: impl FnOnce() -> R) -> R {
    with_flag(&HELP_WHILE_WAITING, body)
}

/// The running task begins a channel operation: if it has gone on for
/// [`OPERATIONS_BEFORE_SHARING`] since it woke the task in its thread's slot, that task goes
/// to the shared queue (and a sleeping thread is woken for it).
pub(crate) fn operating() {
    let Some(pool) = POOL_THREAD.with(Cell::get) else {
        return;
    };
    let since = SINCE_FILLED.with(|since| {
        let count = since.get().saturating_add(1);
        since.set(count);
        count
    });
    if since >= OPERATIONS_BEFORE_SHARING {
        pool.hand_on_slot();
    }
}

/// Runs `future` to completion on the calling thread, blocking it meanwhile: for async code
/// outside any process (in `main`, or a test). Lightweight processes themselves are run by
/// their composition and need no such call.
///
/// # Examples
///
/// ```
/// let (writer, reader) = csp_core::channel::<u8>();
/// std::thread::spawn(move || writer.write(1).unwrap());
/// assert_eq!(csp_core::block_on(reader.read_async()).unwrap(), 1);
/// ```
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    const LIMIT: Duration = Duration::from_secs(10);

    /// Two tasks that keep waking each other, on a pool of one thread, do not shut out a
    /// third: without the limit on runs from the next slot, the third would never run.
    #[test]
    fn two_tasks_waking_each_other_do_not_starve_a_third() {
        let pool = Pool::start(1);
        let stop = Arc::new(AtomicBool::new(false));
        let (ping_writer, ping_reader) = crate::channel::<u64>();
        let (pong_writer, pong_reader) = crate::channel::<u64>();
        pool.spawn(Box::pin({
            let stop = Arc::clone(&stop);
            async move {
                let mut n = 0;
                while !stop.load(Ordering::Acquire) {
                    if ping_writer.write_async(n).await.is_err() {
                        break;
                    }
                    n = pong_reader.read_async().await.unwrap_or(0);
                }
            }
        }));
        pool.spawn(Box::pin(async move {
            while let Ok(n) = ping_reader.read_async().await {
                if pong_writer.write_async(n + 1).await.is_err() {
                    break;
                }
            }
        }));
        let (ran, third_ran) = mpsc::channel();
        pool.spawn(Box::pin(async move {
            let _ = ran.send(());
        }));
        let outcome = third_ran.recv_timeout(LIMIT);
        stop.store(true, Ordering::Release);
        outcome.expect("the third task ran while the other two kept waking each other");
    }

    /// A task that wakes another, then blocks its thread on that other task, does not hold
    /// it back in its thread's next slot: the other runs on the second thread.
    #[test]
    fn a_task_that_blocks_its_thread_lets_go_of_the_task_it_woke() {
        let pool = Pool::start(2);
        let x = crate::Channel::<u64>::new();
        let (x_writer, x_reader) = (x.writer(), x.reader());
        let (y_writer, y_reader) = crate::channel::<u64>();
        pool.spawn(Box::pin(async move {
            if x_reader.read_async().await.is_ok() {
                let _ = y_writer.write_async(2).await;
            }
        }));
        x.until_readers_wait(1);
        drop(x);
        let (done, finished) = mpsc::channel();
        pool.spawn(Box::pin(async move {
            if x_writer.write_async(1).await.is_ok() {
                let _ = done.send(y_reader.read()); // blocks this pool thread
            }
        }));
        let got = finished
            .recv_timeout(LIMIT)
            .expect("the woken task ran while its waker blocked");
        assert_eq!(got.ok(), Some(2));
    }

    /// Waits until every thread of `pool` sleeps: a task that was polled has returned from
    /// its poll (a wake while it runs would send it back to the pool, not to a helper).
    fn until_idle(pool: &Pool, threads: usize) {
        let started = std::time::Instant::now();
        while pool.sleeping.load(Ordering::SeqCst) < threads {
            assert!(
                started.elapsed() < LIMIT,
                "the pool's threads never went idle"
            );
            thread::yield_now();
        }
    }

    /// A served task that reads one request and answers with the thread it ran on.
    fn served_echo(pool: &'static Pool) -> (crate::Writer<()>, crate::Reader<thread::ThreadId>) {
        let requests = crate::Channel::<()>::new();
        let (request_writer, request_reader) = (requests.writer(), requests.reader());
        let (answer_writer, answer_reader) = crate::channel::<thread::ThreadId>();
        pool.spawn_served(Box::pin(async move {
            if request_reader.read_async().await.is_ok() {
                let _ = answer_writer.write_async(thread::current().id()).await;
            }
        }));
        requests.until_readers_wait(1);
        until_idle(pool, 1);
        (request_writer, answer_reader)
    }

    /// A helping thread that wakes a served task and then waits for its answer runs it
    /// itself: the answer comes from this thread.
    #[test]
    fn a_helping_thread_runs_the_served_task_it_wakes_while_it_waits() {
        let pool = Pool::start(1);
        let (request, answer) = served_echo(pool);
        let _helping = Helping::start();
        let ran_on = help_while_waiting(|| {
            request.write(()).unwrap();
            answer.read_timeout(LIMIT)
        });
        assert_eq!(
            ran_on.expect("the served task answers"),
            thread::current().id()
        );
    }

    /// A thread that does not help leaves the served task it wakes to the pool.
    #[test]
    fn a_served_task_woken_by_a_thread_that_does_not_help_runs_on_the_pool() {
        let pool = Pool::start(1);
        let (request, answer) = served_echo(pool);
        request.write(()).unwrap();
        let ran_on = answer.read_timeout(LIMIT).expect("the served task answers");
        assert_ne!(ran_on, thread::current().id());
    }

    /// A helping thread that waits outside `help_while_waiting` hands the task it woke to
    /// the pool first, and so does one that stops helping: neither holds it back.
    #[test]
    fn a_helping_thread_that_may_not_run_its_task_hands_it_on() {
        let pool = Pool::start(1);
        let (request, answer) = served_echo(pool);
        let helping = Helping::start();
        request.write(()).unwrap();
        let ran_on = answer
            .read_timeout(LIMIT)
            .expect("the served task ran on the pool while its helper waited");
        assert_ne!(ran_on, thread::current().id());

        let (request, answer) = served_echo(pool);
        request.write(()).unwrap();
        drop(helping);
        let ran_on = thread::spawn(move || answer.read_timeout(LIMIT))
            .join()
            .unwrap()
            .expect("the served task ran on the pool once its helper stopped helping");
        assert_ne!(ran_on, thread::current().id());
    }

    /// Run inline, a served task handles one request and leaves the next, already waiting,
    /// to the pool: the helper is not kept serving others.
    #[test]
    fn a_served_task_run_inline_takes_one_request_and_leaves_the_rest_to_the_pool() {
        let pool = Pool::start(1);
        let requests = crate::Channel::<u32>::buffered(2);
        let (request_writer, request_reader) = (requests.writer(), requests.reader());
        let (answer_writer, answer_reader) = {
            let answers = crate::Channel::<(u32, thread::ThreadId)>::buffered(2);
            (answers.writer(), answers.reader())
        };
        pool.spawn_served(Box::pin(async move {
            while let Ok(request) = request_reader.read_async().await {
                take_turn().await;
                let answer = (request, thread::current().id());
                if answer_writer.write_async(answer).await.is_err() {
                    break;
                }
            }
        }));
        requests.until_readers_wait(1);
        until_idle(pool, 1);
        let _helping = Helping::start();
        let (first, second) = help_while_waiting(|| {
            request_writer.write(1).unwrap();
            request_writer.write(2).unwrap();
            (
                answer_reader.read_timeout(LIMIT).expect("the first answer"),
                answer_reader
                    .read_timeout(LIMIT)
                    .expect("the second answer"),
            )
        });
        let here = thread::current().id();
        assert_eq!(
            first,
            (1, here),
            "the helper handles the request it brought"
        );
        assert_eq!(second.0, 2);
        assert_ne!(second.1, here, "the next request is left to the pool");
    }

    /// A served task that waits inside its inline run (csp's servers never do) leaves the
    /// wait it interrupted intact: the helper still gets the right answer.
    #[test]
    fn a_wait_inside_an_inline_run_leaves_the_helpers_own_wait_alone() {
        let pool = Pool::start(1);
        let requests = crate::Channel::<u32>::new();
        let side = crate::Channel::<u32>::new();
        let (request_writer, request_reader) = (requests.writer(), requests.reader());
        let (side_writer, side_reader) = (side.writer(), side.reader());
        let (answer_writer, answer_reader) = crate::channel::<u32>();
        pool.spawn_served(Box::pin(async move {
            if let Ok(request) = request_reader.read_async().await {
                // A blocking read, on the helper's thread, while the helper waits.
                let added = side_reader.read_timeout(LIMIT).unwrap_or(0);
                let _ = answer_writer.write_async(request + added).await;
            }
        }));
        requests.until_readers_wait(1);
        until_idle(pool, 1);
        let feeder = thread::spawn(move || {
            side.until_readers_wait(1);
            side_writer.write(40).unwrap();
        });
        let _helping = Helping::start();
        let answer = help_while_waiting(|| {
            request_writer.write(2).unwrap();
            answer_reader.read_timeout(LIMIT)
        });
        feeder.join().unwrap();
        assert_eq!(answer.expect("the served task answers"), 42);
    }

    /// A helping thread that carries out another OS process's request inside its own wait
    /// leaves the served task that request wakes to the pool, not in its slot.
    #[test]
    fn a_served_task_woken_for_others_goes_to_the_pool() {
        let pool = Pool::start(1);
        let (request, answer) = served_echo(pool);
        let _helping = Helping::start();
        for_others(|| request.write(()).unwrap());
        let in_slot = HELPED.with(|helped| {
            let slot = helped.take();
            let filled = slot.is_some();
            helped.set(slot);
            filled
        });
        assert!(!in_slot, "the served task waits in the helper's slot");
        let ran_on = answer.read_timeout(LIMIT).expect("the served task answers");
        assert_ne!(ran_on, thread::current().id());
    }

    /// A task that keeps writing into a buffered channel after waking its reader does not
    /// keep the reader in its thread's slot: the reader runs beside it on the other thread
    /// (the writer then computes, never awaiting, until it sees the reader's progress).
    #[test]
    fn a_streaming_writer_lets_its_reader_run_beside_it() {
        let pool = Pool::start(2);
        let channel = crate::Channel::<u64>::buffered(8);
        let (writer, reader) = (channel.writer(), channel.reader());
        let progress = Arc::new(AtomicUsize::new(0));
        pool.spawn(Box::pin({
            let progress = Arc::clone(&progress);
            async move {
                while reader.read_async().await.is_ok() {
                    progress.fetch_add(1, Ordering::AcqRel);
                }
            }
        }));
        channel.until_readers_wait(1);
        drop(channel);
        let (done, finished) = mpsc::channel();
        pool.spawn(Box::pin(async move {
            for n in 0..3 {
                let _ = writer.write_async(n).await;
            }
            let started = std::time::Instant::now();
            while progress.load(Ordering::Acquire) == 0 && started.elapsed() < LIMIT {
                std::hint::spin_loop(); // computing, never awaiting
            }
            let _ = done.send(progress.load(Ordering::Acquire) > 0);
        }));
        let saw_progress = finished.recv_timeout(LIMIT * 2).expect("the writer ends");
        assert!(
            saw_progress,
            "the reader waited in the writer's slot while the writer ran"
        );
    }
}
