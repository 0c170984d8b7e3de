//! Waiting threads that serve the mirrors' requests while they wait.
//!
//! See the [module documentation](super) for what a helper takes and why that is safe.

use std::sync::Weak;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::answer::send_reply;
use super::{LIVE, MIRRORS, Mirror, try_lock};
use crate::home::HomeReply;
use crate::net::connection::Connection;
use crate::net::message::{Operation, OperationReply, OperationRequest, Wait};

/// How many threads look at the mirrors now.
pub(super) static LOOKING: AtomicUsize = AtomicUsize::new(0);
/// How many requests helpers carried out (for tests).
static TAKEN: AtomicU64 = AtomicU64::new(0);

/// How many requests from other OS processes threads of this one carried out while they
/// waited, instead of a mirror thread (for tests).
#[doc(hidden)]
pub fn requests_served_by_waiting_threads() -> u64 {
    TAKEN.load(Ordering::Relaxed)
}

impl Mirror {
    /// Carries out the waiting request if it completes at once; wakes the mirror if a
    /// request waits that this does not take.
    fn help(&self) {
        let Some(mut between) = try_lock(&self.step) else {
            return; // the mirror (or another helper) is in a step
        };
        let Some(mut connection) = try_lock(&self.connection) else {
            return;
        };
        if !connection.frame_waiting() {
            return;
        }
        // What the request wakes is not this thread's to run (it is in a wait of its own).
        let taken = crate::executor::for_others(|| {
            connection
                .try_receive_with(|request: OperationRequest, payload| at_once(request, payload))
        });
        match taken {
            Ok(Some(reply)) => {
                TAKEN.fetch_add(1, Ordering::Relaxed);
                // Slots granted: writes ahead follow, which the mirror carries out beside
                // their reader; it looks for them itself.
                let granted = matches!(reply, HomeReply::Message(OperationReply::Granted(_)));
                self.helped.store(!granted, Ordering::Relaxed);
                if granted {
                    self.thread.unpark();
                }
                between.answer_was_read();
                match send_reply(&mut connection, reply) {
                    Ok(left) => *between = left,
                    // The remote thread is gone: its mirror finds out and cleans up.
                    Err(()) => self.thread.unpark(),
                }
            }
            Ok(None) => {}
            Err(()) => {
                self.left.store(true, Ordering::SeqCst);
                self.helped.store(false, Ordering::Relaxed);
                self.thread.unpark();
            }
        }
    }
}

/// Whether a helper may carry out `operation` (if it completes at once): a write of a
/// value with no channel ends inside or a read, neither timed, or a `Sync`.
fn for_helpers(operation: &Operation) -> bool {
    match operation {
        Operation::WriteFollowing { wait, plain, .. } => *plain && !matches!(wait, Wait::For(_)),
        Operation::Read { wait } => !matches!(wait, Wait::For(_)),
        // Writes ahead stream: the mirror carries them out beside their reader.
        Operation::Sync => true,
        _ => false,
    }
}

/// Whether the request waiting on `connection` is one helpers may carry out (looked at,
/// not taken).
pub(super) fn helpers_may_take(connection: &mut Connection) -> bool {
    let mut may = false;
    let _ = connection.try_receive_with(|request: OperationRequest, _| {
        may = for_helpers(&request.operation);
        None::<()>
    });
    may
}

/// A request carried out without waiting, if it completes so: the answer to send; `None`
/// leaves the frame to the mirror.
fn at_once(request: OperationRequest, payload: &[u8]) -> Option<HomeReply> {
    if !for_helpers(&request.operation) {
        return None;
    }
    let end = || crate::node::node().attached(request.end);
    match request.operation {
        // A plain value: if it cannot be written now, the copy decoded goes and the frame
        // stays. One that may not wait is answered whatever happens, as the mirror would.
        Operation::WriteFollowing {
            wait, ask_credit, ..
        } => {
            let end = end()?;
            let reply = match end.write_encoded(payload, Wait::Not) {
                OperationReply::Done if ask_credit => match end.grant() {
                    0 => OperationReply::Done,
                    granted => OperationReply::Granted(granted),
                },
                OperationReply::Done => OperationReply::Done,
                _ if matches!(wait, Wait::Forever) => return None,
                reply => reply,
            };
            Some(reply.into())
        }
        Operation::Read { wait } => {
            let reply = end()?.perform(Operation::Read { wait: Wait::Not });
            let answered = matches!(reply, HomeReply::Value(_)) || matches!(wait, Wait::Not);
            answered.then_some(reply)
        }
        Operation::Sync => Some(OperationReply::Done.into()),
        _ => None,
    }
}

/// The calling thread waits in a channel operation and still looks: it serves the mirrors'
/// requests that complete at once (see the module documentation). Call it between looks;
/// [`Looking`] says for how long it looks.
pub(crate) fn help_mirrors() {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let Ok(mirrors) = MIRRORS.try_lock() else {
        return;
    };
    for mirror in mirrors.iter().filter_map(Weak::upgrade) {
        mirror.help();
    }
}

/// Counts the calling thread as looking at the mirrors while it lives (the mirrors park
/// meanwhile); `None` if there are no mirrors.
pub(crate) struct Looking(());

impl Looking {
    pub(crate) fn start() -> Option<Looking> {
        if LIVE.load(Ordering::Relaxed) == 0 {
            return None;
        }
        LOOKING.fetch_add(1, Ordering::SeqCst);
        Some(Looking(()))
    }
}

impl Drop for Looking {
    fn drop(&mut self) {
        LOOKING.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::super::lock;
    use super::*;
    use std::time::Duration;

    /// Counts the test as a thread that looks while it lives.
    struct LooksHere;

    impl LooksHere {
        fn start() -> LooksHere {
            LOOKING.fetch_add(1, Ordering::SeqCst);
            LooksHere
        }
    }

    impl Drop for LooksHere {
        fn drop(&mut self) {
            LOOKING.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn request(end: u64, operation: Operation) -> OperationRequest {
        OperationRequest { end, operation }
    }

    #[test]
    fn a_request_helpers_may_take_is_left_to_them_while_one_looks_until_they_leave_it() {
        let (here, mut there) = Connection::shared_pair();
        let mirror = Mirror::unlisted(here);
        let _looking = LooksHere::start();
        let read = Operation::Read {
            wait: Wait::Forever,
        };
        there.send(&request(u64::MAX, read)).unwrap();
        assert!(mirror.leaves_to_helpers(&mut lock(&mirror.connection)));
        // A helper cannot carry it out (no such end here): it leaves it to the mirror.
        mirror.help();
        let connection = &mut lock(&mirror.connection);
        assert!(!mirror.leaves_to_helpers(connection), "left to the mirror");
        let left: OperationRequest = connection.receive().unwrap();
        assert_eq!(left.end, u64::MAX, "and still there for it");
        mirror.serves(&left.operation);
        // Requests no helper takes are the mirror's at once.
        let timed = Operation::Read {
            wait: Wait::For(Duration::from_secs(1)),
        };
        for operation in [Operation::Poison, timed, Operation::WriteAhead] {
            there.send(&request(7, operation)).unwrap();
            assert!(!mirror.leaves_to_helpers(connection));
            let taken: OperationRequest = connection.receive().unwrap();
            mirror.serves(&taken.operation);
        }
        // Nor, in a stream of writes ahead, the request that asks for more slots.
        let asks = Operation::WriteFollowing {
            wait: Wait::Forever,
            ask_credit: true,
            plain: true,
        };
        there.send(&request(7, asks)).unwrap();
        assert!(!mirror.leaves_to_helpers(connection));
    }
}
