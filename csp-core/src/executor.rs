//! Where lightweight processes run: one pool of threads, as many as the machine has CPUs,
//! shared by every task of this OS process.
//!
//! The pool is `futures`' [`ThreadPool`], made on first use. A lightweight process (from
//! `#[process] async fn`) is spawned onto it when it is composed; while it awaits a channel it
//! holds no thread, so a network of a million of them fits in memory, and the pool's threads
//! run whichever are ready, on every core.

use std::sync::OnceLock;

use futures::executor::ThreadPool;
use futures::future::BoxFuture;

fn pool() -> &'static ThreadPool {
    static POOL: OnceLock<ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        ThreadPool::builder()
            .pool_size(threads)
            .name_prefix("csp-task-")
            .create()
            .expect("starting the pool of threads for lightweight processes")
    })
}

/// Runs `task` on the pool.
pub(crate) fn spawn(task: BoxFuture<'static, ()>) {
    pool().spawn_ok(task);
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
