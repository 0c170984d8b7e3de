//! A task's mark: what a lightweight process waits on, left where the deadlock monitor can
//! read it, without a lock, a shared count or a reference count on the task's path.
//!
//! A task that returns `Pending` from a wait with no deadline *marks* itself: it writes two
//! pointers into the wait's own future (the description of what it waits on, and its
//! selector) and sets its state to marked. When it is polled again, or the wait's future is
//! dropped, the mark is taken back. The monitor reads a mark only when it suspects a
//! deadlock: it moves the state from marked to *reading*, follows the pointers (building the
//! description and taking a reference to the selector), and sets it back; a task polled
//! meanwhile waits the few instructions that takes before it goes on. So the pointers are
//! followed only while the future they point into cannot run, move or be dropped: it is
//! pinned, and only its own task, which the reading holds back, can drop it.
//!
//! Per wait that is two stores and one compare-and-swap on the task's own cache line
//! (against a dozen atomic operations, two of them on a counter shared by every thread,
//! when tasks were counted one by one).

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use super::Waiting;
use crate::wait::Selector;

/// Builds the description of what a task waits on, for the report.
pub(crate) type Describe<'a> = dyn Fn() -> Option<Waiting> + Sync + 'a;

const RUNNING: u8 = 0;
const MARKED: u8 = 1;
const READING: u8 = 2;

#[derive(Clone, Copy)]
struct Record {
    describe: NonNull<Describe<'static>>,
    selector: NonNull<Selector>,
}

/// One task's mark (a field of its actor).
pub(crate) struct TaskMark {
    state: AtomicU8,
    /// Written only by the task itself while the state is `RUNNING`; read by the monitor
    /// only while the state is `READING`.
    record: UnsafeCell<Option<Record>>,
}

// SAFETY: the record is written only by the thread polling the task, while the state is
// RUNNING, and read by another thread only while it holds the state at READING (which the
// task waits out before it writes again); the pointees are `Sync`.
unsafe impl Send for TaskMark {}
// SAFETY: as above.
unsafe impl Sync for TaskMark {}

impl Default for TaskMark {
    fn default() -> Self {
        TaskMark {
            state: AtomicU8::new(RUNNING),
            record: UnsafeCell::new(None),
        }
    }
}

impl TaskMark {
    /// Whether the task is marked as waiting.
    pub(crate) fn is_marked(&self) -> bool {
        self.state.load(Ordering::Acquire) != RUNNING
    }

    /// Takes the mark back (the task is polled again), waiting out a reading monitor.
    pub(crate) fn clear(&self) {
        if self.state.load(Ordering::Relaxed) == RUNNING {
            return;
        }
        loop {
            match self.state.compare_exchange_weak(
                MARKED,
                RUNNING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) | Err(RUNNING) => return,
                Err(_) => std::thread::yield_now(), // READING, or a spurious failure
            }
        }
    }

    /// Marks the task as waiting with `selector` on what `describe` tells.
    ///
    /// # Safety
    ///
    /// Only the task's own thread, during its poll, may call this; `describe` and `selector`
    /// must stay where they are until the mark is cleared: until the task is next polled,
    /// or [`clear_for`](TaskMark::clear_for) is called with this selector before they go.
    pub(crate) unsafe fn mark(&self, describe: &Describe<'_>, selector: &Arc<Selector>) {
        self.clear(); // a second wait in the same poll: the first one's mark goes
        let describe = NonNull::from(describe);
        // SAFETY: only the lifetime is erased; the caller keeps the pointee in place for as
        // long as the mark stands, and the monitor follows it only then.
        let describe: NonNull<Describe<'static>> = unsafe { std::mem::transmute(describe) };
        let record = Record {
            describe,
            selector: NonNull::from(&**selector),
        };
        // SAFETY: the state is RUNNING and this is the task's thread: nobody else reads or
        // writes the record now.
        unsafe { *self.record.get() = Some(record) };
        self.state.store(MARKED, Ordering::Release);
    }

    /// Takes the mark back if it is the one of `selector`'s wait (whose future is going).
    /// Only the task's own thread may call this.
    pub(crate) fn clear_for(&self, selector: &Selector) {
        if self.state.load(Ordering::Relaxed) == RUNNING {
            return;
        }
        // SAFETY: only this thread writes the record, and it is not writing now.
        let record = unsafe { *self.record.get() };
        if record.is_some_and(|record| std::ptr::eq(record.selector.as_ptr(), selector)) {
            self.clear();
        }
    }

    /// What the task waits on and the selector it waits with, if it is marked: for the
    /// monitor, which holds the task back meanwhile.
    pub(crate) fn read(&self) -> Option<(Waiting, Arc<Selector>)> {
        self.state
            .compare_exchange(MARKED, READING, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: READING: the task cannot write the record, nor run, move or drop the
        // future the pointers point into, until the state goes back to MARKED.
        let read = unsafe { *self.record.get() }.and_then(|record| {
            // SAFETY: as above: the pointees are where the task left them.
            let waiting = unsafe { record.describe.as_ref() }()?;
            let selector = record.selector.as_ptr().cast_const();
            // SAFETY: the pointer came from a live `Arc<Selector>` that the future holds.
            let selector = unsafe {
                Arc::increment_strong_count(selector);
                Arc::from_raw(selector)
            };
            Some((waiting, selector))
        });
        self.state.store(MARKED, Ordering::Release);
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ChannelName;

    #[test]
    fn a_mark_is_read_while_it_stands_and_not_after_it_is_cleared() {
        let mark = TaskMark::default();
        let selector = Selector::for_task();
        let describe = || Some(Waiting::Read(ChannelName::new("numbers")));
        assert!(!mark.is_marked());
        assert!(mark.read().is_none(), "nothing is read from a running task");
        // SAFETY: `describe` and `selector` outlive the mark, cleared below.
        unsafe { mark.mark(&describe, &selector) };
        assert!(mark.is_marked());
        let (waiting, read) = mark.read().expect("a marked task is read");
        assert!(matches!(waiting, Waiting::Read(name) if name.as_str() == "numbers"));
        assert!(Arc::ptr_eq(&read, &selector));
        assert!(mark.is_marked(), "reading leaves the mark standing");
        mark.clear_for(&Selector::for_task());
        assert!(mark.is_marked(), "another wait's end leaves it standing");
        mark.clear_for(&selector);
        assert!(!mark.is_marked());
        assert!(mark.read().is_none());
    }

    #[test]
    fn a_task_polled_while_the_monitor_reads_waits_for_it() {
        use std::sync::atomic::AtomicBool;
        use std::sync::mpsc::channel;
        use std::time::Duration;
        const LIMIT: Duration = Duration::from_secs(10);

        let mark = Arc::new(TaskMark::default());
        let selector = Selector::for_task();
        let (entered, inside) = channel::<()>();
        let leave = Arc::new(AtomicBool::new(false));
        let describe = Arc::new({
            let leave = Arc::clone(&leave);
            move || {
                let _ = entered.send(());
                while !leave.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                Some(Waiting::Join("p".to_string()))
            }
        });
        // SAFETY: `describe` and `selector` stay alive (held here and by the threads) until
        // the mark is cleared, which this test waits for.
        unsafe { mark.mark(&*describe, &selector) };
        let (read_tx, read_rx) = channel();
        std::thread::spawn({
            let (mark, _describe, _selector) = (
                Arc::clone(&mark),
                Arc::clone(&describe),
                Arc::clone(&selector),
            );
            move || {
                let _ = read_tx.send(mark.read().map(|(waiting, _)| waiting));
            }
        });
        inside
            .recv_timeout(LIMIT)
            .expect("the monitor reads the description");
        let (cleared_tx, cleared_rx) = channel();
        std::thread::spawn({
            let mark = Arc::clone(&mark);
            move || {
                mark.clear();
                let _ = cleared_tx.send(());
            }
        });
        assert!(
            cleared_rx.recv_timeout(Duration::from_millis(20)).is_err(),
            "the task went on while the monitor read its mark"
        );
        leave.store(true, Ordering::Release);
        cleared_rx
            .recv_timeout(LIMIT)
            .expect("the task goes on once the reading is done");
        let waiting = read_rx
            .recv_timeout(LIMIT)
            .expect("the monitor finishes reading");
        assert!(matches!(waiting, Some(Waiting::Join(name)) if name == "p"));
        assert!(!mark.is_marked());
    }
}
