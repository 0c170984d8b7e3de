//! Where lightweight processes run: one executor with a thread per CPU, shared by every
//! task of this OS process.
//!
//! The executor is `async-executor`'s, made on first use. A lightweight process (from
//! `#[process] async fn`) is spawned onto it when it is composed; while it awaits a channel it
//! holds no thread, so a network of a million of them fits in memory, and the executor's
//! threads run whichever are ready, on every core. (`futures`' `ThreadPool` was measured
//! first: commstime with tasks took 6.2 us per communication on it against 1.9 us here, on
//! two CPUs; its idle threads sleep on a condition variable at once, and waking one on
//! another CPU costs tens of microseconds.) Each thread runs the executor as
//! `block_on(executor.run(..))` would, with one difference: it tells the deadlock monitor
//! when it runs out of tasks and when it wakes again, which is how tasks are counted (see
//! [`deadlock`](crate::deadlock)).

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Wake, Waker};
use std::thread::{self, Thread};

use futures::future::BoxFuture;

fn executor() -> &'static async_executor::Executor<'static> {
    static EXECUTOR: OnceLock<&'static async_executor::Executor<'static>> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        let executor: &'static async_executor::Executor<'static> =
            Box::leak(Box::new(async_executor::Executor::new()));
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        for n in 0..threads {
            crate::deadlock::executor_thread_starts();
            std::thread::Builder::new()
                .name(format!("csp-task-{n}"))
                .spawn(move || serve(executor))
                .expect("starting a thread for lightweight processes");
        }
        executor
    })
}

/// Wakes an executor thread that ran out of tasks.
struct Unpark {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

/// An executor thread: polls tasks for ever, and tells the deadlock monitor each time it
/// runs out of them (then every task it could run waits) and each time it wakes again. This
/// is what `block_on(executor.run(..))` does, with those two calls around the sleep: tasks
/// are counted by the executor's threads, so that a task's wait touches no shared count.
fn serve(executor: &'static async_executor::Executor<'static>) {
    // Not an actor: the thread only acts for the tasks it polls.
    crate::deadlock::serve_only();
    let unpark = Arc::new(Unpark {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&unpark));
    let mut context = Context::from_waker(&waker);
    let mut run = pin!(executor.run(std::future::pending::<()>()));
    loop {
        let _ = run.as_mut().poll(&mut context); // never ready
        if unpark.woken.swap(false, Ordering::AcqRel) {
            continue; // woken while polling (the executor yields now and then)
        }
        crate::deadlock::executor_thread_idle();
        while !unpark.woken.swap(false, Ordering::AcqRel) {
            thread::park();
        }
        crate::deadlock::executor_thread_busy();
    }
}

/// Runs `task` on the pool.
pub(crate) fn spawn(task: BoxFuture<'static, ()>) {
    executor().spawn(task).detach();
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
