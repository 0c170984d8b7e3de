//! Channel operations for lightweight processes: the `_async` forms of read and write.
//!
//! They follow the same rules as the blocking forms, on the same channels, so tasks and
//! threads can be on either end of one channel at once. Instead of blocking its thread, a
//! task leaves its entry in the channel and awaits its [`Selector`]; whoever completes the
//! communication wakes the task's waker.
//!
//! # Cancellation
//!
//! Dropping an operation's future withdraws its entry. A write dropped before a reader took
//! its value drops the value with it (it never arrived anywhere). A read dropped after a
//! writer had already handed it a value puts that value back at the front of the channel, so
//! the next read gets it: nothing written is lost.
//!
//! Ends whose channel lives in another OS process carry out the operation with a blocking
//! round trip to the channel's home, holding up the executor thread meanwhile: give processes
//! that talk to other OS processes a thread of their own.

use std::sync::Arc;
use std::time::Duration;

use super::core::{Begun, Core};
use super::reader::read_error;
use super::writer::write_error;
use super::{Deadline, Reader, Shortfall, Writer};
use crate::deadlock::Waiting;
use crate::error::{ChannelError, ReadTimeoutError, WriteError, WriteTimeoutError};
use crate::wait::Selector;

/// Withdraws a task's read entry if the read's future is dropped while it waits.
struct PendingRead<'a, T> {
    core: &'a Core<T>,
    selector: Arc<Selector>,
    armed: bool,
}

impl<T> Drop for PendingRead<'_, T> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.selector.abort();
        let delivered = self
            .core
            .unregister_reader(&mut self.core.lock(), &self.selector, 0);
        if let Some(value) = delivered {
            self.core.restore(value);
        }
    }
}

/// Withdraws a task's write entry if the write's future is dropped while it waits.
struct PendingWrite<'a, T> {
    core: &'a Core<T>,
    selector: Arc<Selector>,
    armed: bool,
}

impl<T> Drop for PendingWrite<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            self.selector.abort();
            let unsent = self
                .core
                .unregister_writer(&mut self.core.lock(), &self.selector, 0);
            drop(unsent); // outside the channel's lock
        }
    }
}

fn instant(deadline: Deadline) -> Option<std::time::Instant> {
    match deadline {
        Deadline::At(at) => Some(at),
        Deadline::Now | Deadline::Never => None,
    }
}

impl<T: Send> Reader<T> {
    /// Reads a value, awaiting a writer: [`read`](Reader::read) for a lightweight process.
    ///
    /// # Errors
    ///
    /// As [`read`](Reader::read).
    ///
    /// # Examples
    ///
    /// ```
    /// let (writer, reader) = csp_core::channel::<u32>();
    /// std::thread::spawn(move || writer.write(7).unwrap()); // a thread writes, a task reads
    /// assert_eq!(csp_core::block_on(reader.read_async()).unwrap(), 7);
    /// ```
    pub async fn read_async(&self) -> Result<T, ChannelError> {
        self.read_until_async(Deadline::Never)
            .await
            .map_err(read_error)
    }

    /// Reads a value, awaiting one at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`read_timeout`](Reader::read_timeout).
    pub async fn read_timeout_async(&self, timeout: Duration) -> Result<T, ReadTimeoutError> {
        self.read_until_async(Deadline::after(timeout))
            .await
            .map_err(|shortfall| self.timeout_error(shortfall, timeout))
    }

    async fn read_until_async(&self, deadline: Deadline) -> Result<T, Shortfall> {
        let Some(core) = self.core() else {
            return self.read_until(deadline);
        };
        crate::remote::flush_writes_ahead();
        crate::executor::operating();
        let now = matches!(deadline, Deadline::Now);
        loop {
            let selector = match core.begin_read(|| (!now).then(Selector::for_task)) {
                Begun::Done(value) => return Ok(value),
                Begun::Failed(error, ()) => return Err(Shortfall::Failed(error)),
                Begun::NotReady(()) => return Err(Shortfall::NotReady),
                Begun::Waiting(selector) => selector,
            };
            let mut pending = PendingRead {
                core,
                selector: Arc::clone(&selector),
                armed: true,
            };
            let woken = selector
                .wait_async(instant(deadline), || {
                    Some(Waiting::Read(core.name().clone()))
                })
                .await;
            pending.armed = false;
            if let Ok(outcome) = core
                .end_read(&selector, woken)
                .outcome(|| core.deadlocked())
            {
                return outcome.map_err(|((), shortfall)| shortfall);
            }
        }
    }
}

impl<T: Send> Writer<T> {
    /// Writes `value`, awaiting a reader (or buffer room): [`write`](Writer::write) for a
    /// lightweight process.
    ///
    /// # Errors
    ///
    /// As [`write`](Writer::write): the value is handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// let (writer, reader) = csp_core::channel::<u32>();
    /// let reading = std::thread::spawn(move || reader.read().unwrap());
    /// csp_core::block_on(writer.write_async(9)).unwrap();
    /// assert_eq!(reading.join().unwrap(), 9);
    /// ```
    pub async fn write_async(&self, value: T) -> Result<(), WriteError<T>> {
        self.write_until_async(value, Deadline::Never)
            .await
            .map_err(write_error)
    }

    /// Writes `value`, awaiting a reader at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`write_timeout`](Writer::write_timeout): the value is handed back.
    pub async fn write_timeout_async(
        &self,
        value: T,
        timeout: Duration,
    ) -> Result<(), WriteTimeoutError<T>> {
        self.write_until_async(value, Deadline::after(timeout))
            .await
            .map_err(|failed| self.timeout_error(failed, timeout))
    }

    async fn write_until_async(
        &self,
        mut value: T,
        deadline: Deadline,
    ) -> Result<(), (T, Shortfall)> {
        let Some(core) = self.core() else {
            return self.write_until(value, deadline);
        };
        crate::remote::flush_writes_ahead();
        crate::executor::operating();
        let now = matches!(deadline, Deadline::Now);
        loop {
            let selector = match core.begin_write(value, || (!now).then(Selector::for_task)) {
                Begun::Done(()) => return Ok(()),
                Begun::Failed(error, unsent) => return Err((unsent, Shortfall::Failed(error))),
                Begun::NotReady(unsent) => return Err((unsent, Shortfall::NotReady)),
                Begun::Waiting(selector) => selector,
            };
            let mut pending = PendingWrite {
                core,
                selector: Arc::clone(&selector),
                armed: true,
            };
            let woken = selector
                .wait_async(instant(deadline), || {
                    Some(Waiting::Write(core.name().clone()))
                })
                .await;
            pending.armed = false;
            value = match core
                .end_write(&selector, woken)
                .outcome(|| core.deadlocked())
            {
                Ok(outcome) => return outcome,
                Err(unsent) => unsent,
            };
        }
    }
}
