//! Where lightweight processes run: one executor with a thread per CPU, shared by every
//! task of this OS process.
//!
//! The executor is `async-executor`'s, made on first use. A lightweight process (from
//! `#[process] async fn`) is spawned onto it when it is composed; while it awaits a channel it
//! holds no thread, so a network of a million of them fits in memory, and the executor's
//! threads run whichever are ready, on every core. (`futures`' `ThreadPool` was measured
//! first: commstime with tasks took 6.2 us per communication on it against 1.9 us here, on
//! two CPUs; its idle threads sleep on a condition variable at once, and waking one on
//! another CPU costs tens of microseconds.)

use std::sync::OnceLock;

use futures::future::BoxFuture;

fn executor() -> &'static async_executor::Executor<'static> {
    static EXECUTOR: OnceLock<&'static async_executor::Executor<'static>> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        let executor: &'static async_executor::Executor<'static> =
            Box::leak(Box::new(async_executor::Executor::new()));
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        for n in 0..threads {
            std::thread::Builder::new()
                .name(format!("csp-task-{n}"))
                .spawn(move || {
                    futures_lite::future::block_on(executor.run(std::future::pending::<()>()))
                })
                .expect("starting a thread for lightweight processes");
        }
        executor
    })
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
