//! This thread's operations connections to the homes it uses, and its writes ahead.
//!
//! Each operation waits for its answer, except in a *burst*: a thread that writes one end of
//! a buffered channel with blocking writes, twice in a row, asks the home for slots, and the
//! home reserves up to half the buffer (at most 64 values) for this end. The writes that
//! follow go out as frames with no answer (`Operation::WriteAhead`) while slots last, and the
//! next ordinary write asks for more. A write ahead returns before its value is in the
//! buffer, so the burst ends, before anything else this thread does on a channel, when its
//! process, a task's poll or the thread ends, and when the end is dropped: the unused slots go
//! back (`ReturnCredit`) and, unless the next operation travels on the same connection (which
//! the home serves in order), the thread waits for a `Sync` answer, proof that every value is
//! in the buffer. A detach carries the number of writes ahead sent through the end, and the
//! home waits for them before it drops the end; a dead process's operations connections are
//! drained before its ends are dropped. Values with channel ends inside, timed and
//! non-blocking writes, and rendezvous channels are never written ahead.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Link, RemoteEnd, connect};
use crate::deadlock::{self, Waiting};
use crate::net::address::Address;
use crate::net::connection::Connection;
use crate::net::encoder::Encoder;
use crate::net::message::{Hello, Operation, OperationReply, OperationRequest, Wait};
use crate::node::process_id;
use crate::transfer::TicketScope;

impl Link {
    /// Carries out an operation on `end` over this thread's operations connection.
    pub(super) fn operate(
        &self,
        end: u64,
        operation: Operation,
        waiting: Option<Waiting>,
    ) -> Option<OperationReply> {
        self.operate_with(end, operation, &[], waiting, |reply, payload| match reply {
            OperationReply::ValueFollowing => OperationReply::Value(payload.to_vec()),
            reply => reply,
        })
    }

    /// As [`operate`](Link::operate), sending `payload` after the request in the same frame,
    /// and handing the reply to `use_reply` with the payload that followed it (borrowed from
    /// the connection's buffer: decode it there, no copy). An operation that may wait for
    /// ever counts, while it waits, as the current actor blocked on `waiting`.
    pub(super) fn operate_with<R>(
        &self,
        end: u64,
        operation: Operation,
        payload: &[u8],
        waiting: Option<Waiting>,
        use_reply: impl FnOnce(OperationReply, &[u8]) -> R,
    ) -> Option<R> {
        CONNECTIONS.with(|connections| {
            let mut connections = in_use(connections);
            // A burst of writes ahead ends with any operation but the next write of the same
            // end; the values are carried out first (see `flush_writes_ahead`).
            let continues = matches!(operation, Operation::WriteFollowing { .. });
            connections.end_burst_unless(&self.address, end, continues);
            let ops = connections.to(&self.address)?;
            let request = OperationRequest { end, operation };
            let sent = ops.send_with_payload(&request, payload).ok();
            let waiting = waiting.map(|waiting| (waiting, ops.interrupt()));
            let reply =
                sent.and_then(|()| deadlock::away(waiting, || ops.receive_with(use_reply).ok()));
            if reply.is_none() {
                connections.lose(&self.address);
            }
            reply
        })
    }

    /// Writes a value to `end`, `encode` encoding it straight into the request's frame (see
    /// [`Connection::send_encoding`]): ahead, without an answer, into a slot of this
    /// thread's burst if the value is plain (no channel ends inside), the write waits for
    /// ever and a slot is left; otherwise as a `WriteFollowing`, whose answer it returns.
    pub(super) fn write_encoding(
        &self,
        end: u64,
        wait: Wait,
        waiting: Option<Waiting>,
        encode: impl FnOnce(&mut Encoder<'_>) -> postcard::Result<()>,
    ) -> Written {
        CONNECTIONS.with(|connections| {
            let mut connections = in_use(connections);
            connections.end_burst_unless(&self.address, end, true);
            // A burst left is this end's.
            let (credit, asks) = connections.burst.as_ref().map_or((0, false), |burst| {
                (burst.credit, burst.asking || burst.credit == 0)
            });
            let blocking = matches!(wait, Wait::Forever);
            let ahead = |lent: &TicketScope| blocking && lent.is_empty() && credit > 0;
            let Some(ops) = connections.to(&self.address) else {
                return Written::Unreachable;
            };
            let sent = ops.send_encoding(
                |encoder| TicketScope::collect(|| encode(encoder)),
                |(encoded, lent)| {
                    let plain = lent.is_empty();
                    let operation = if ahead(lent) {
                        Operation::WriteAhead
                    } else {
                        Operation::WriteFollowing {
                            wait,
                            ask_credit: blocking && plain && asks,
                            plain,
                        }
                    };
                    encoded
                        .is_ok()
                        .then_some(OperationRequest { end, operation })
                },
            );
            let lent = match sent {
                Ok(((Err(error), _), _)) => return Written::NotEncoded(error),
                Ok(((Ok(()), lent), true)) => lent,
                Ok((_, false)) | Err(_) => {
                    connections.lose(&self.address);
                    return Written::Unreachable;
                }
            };
            if ahead(&lent) {
                if let Some(burst) = &mut connections.burst {
                    burst.credit -= 1;
                    burst.unsettled = true;
                }
                return Written::Ahead;
            }
            let streams = blocking && lent.is_empty();
            let waiting = waiting.map(|waiting| (waiting, ops.interrupt()));
            let reply = deadlock::away(waiting, || {
                ops.receive_with(|reply: OperationReply, _| reply).ok()
            });
            // Ends inside the value were lent until the home decoded it, that is, answered.
            drop(lent);
            match reply {
                Some(reply) => Written::Answered { reply, streams },
                None => {
                    connections.lose(&self.address);
                    Written::Unreachable
                }
            }
        })
    }
}

/// How a write sent straight from its encoding went (see `Link::write_encoding`).
pub(crate) enum Written {
    /// The value could not be encoded: nothing was sent.
    NotEncoded(postcard::Error),
    /// The home could not be reached.
    Unreachable,
    /// Sent ahead into a slot of the thread's burst: no answer comes.
    Ahead,
    /// The home's answer; `streams` if the write was blocking and its value plain, one
    /// that may go on as a burst.
    Answered {
        reply: OperationReply,
        streams: bool,
    },
}

/// A thread's writes ahead into the buffer of one channel in another OS process: slots
/// the home reserved for it, filled without waiting for an answer while the thread does
/// nothing but write that end.
struct Burst {
    address: Address,
    end: u64,
    /// Slots left.
    credit: u32,
    /// Writes ahead were sent since the last answer on the connection.
    unsettled: bool,
    /// The thread has written this end the usual way at least once in a row: it asks for
    /// slots with its next write.
    asking: bool,
}

/// A thread's operations connections, one per home it uses (a few: looked up by comparing
/// addresses, cheaper than hashing them on every operation), and its burst.
#[derive(Default)]
struct ThreadConnections {
    open: Vec<(Address, Connection)>,
    burst: Option<Burst>,
}

impl ThreadConnections {
    /// The connection to the home at `address`, made on first use.
    fn to(&mut self, address: &Address) -> Option<&mut Connection> {
        let at = match self.open.iter().position(|(open, _)| open == address) {
            Some(at) => at,
            None => {
                let hello = Hello::Operations {
                    process: process_id(),
                };
                let mut connection = connect(address, &hello).ok()?;
                connection.offer_shared_memory().ok()?;
                self.open.push((address.clone(), connection));
                self.open.len() - 1
            }
        };
        Some(&mut self.open[at].1)
    }

    /// Drops the connection to `address` (it failed).
    fn close(&mut self, address: &Address) {
        self.open.retain(|(open, _)| open != address);
    }

    /// Drops the connection to `address`, which failed in an operation, and the burst.
    fn lose(&mut self, address: &Address) {
        self.close(address);
        self.burst = None;
        BURSTING.with(|bursting| bursting.set(false));
    }

    /// Ends the burst unless the next operation is a write of its end (`continues`): gives
    /// back the slots left, and, if the next operation goes to another home (or to none),
    /// waits until the writes ahead were carried out.
    fn end_burst_unless(&mut self, address: &Address, end: u64, continues: bool) {
        let Some(burst) = &self.burst else {
            return;
        };
        if continues && burst.end == end && &burst.address == address {
            return;
        }
        self.end_burst(Some(address));
    }

    /// Ends the burst (see [`end_burst_unless`](Self::end_burst_unless)); `next` is the
    /// home of the operation to come, if any.
    fn end_burst(&mut self, next: Option<&Address>) {
        BURSTING.with(|bursting| bursting.set(false));
        let Some(burst) = self.burst.take() else {
            return;
        };
        let Some((_, connection)) = self
            .open
            .iter_mut()
            .find(|(open, _)| *open == burst.address)
        else {
            return;
        };
        let mut ok = true;
        if burst.credit > 0 {
            let request = OperationRequest {
                end: burst.end,
                operation: Operation::ReturnCredit {
                    count: burst.credit,
                },
            };
            ok = connection.send(&request).is_ok();
        }
        // The next operation on the same connection is carried out after them anyway.
        if ok && burst.unsettled && next != Some(&burst.address) {
            let request = OperationRequest {
                end: burst.end,
                operation: Operation::Sync,
            };
            ok = connection
                .send(&request)
                .ok()
                .and_then(|()| connection.receive::<OperationReply>().ok())
                .is_some();
        }
        if !ok {
            self.close(&burst.address);
        }
    }
}

impl Drop for ThreadConnections {
    fn drop(&mut self) {
        // A thread that ends has its writes ahead carried out before it is gone, so that
        // whoever joins it sees them done.
        self.end_burst(None);
    }
}

/// This thread's connections, for one operation. A value's `Serialize` or `Deserialize`
/// runs while its operation uses them, so a channel operation made from inside one, on a
/// channel in another OS process, would use them twice: it is refused with a panic that
/// says so.
fn in_use(connections: &RefCell<ThreadConnections>) -> std::cell::RefMut<'_, ThreadConnections> {
    connections.try_borrow_mut().unwrap_or_else(|_| {
        panic!(
            "csp: a channel operation on a channel in another OS process was made from inside \
             the Serialize or Deserialize of a value that this thread is sending to or \
             receiving from another OS process; channel operations cannot be nested in an \
             encoding"
        )
    })
}

thread_local! {
    static CONNECTIONS: RefCell<ThreadConnections> = RefCell::new(ThreadConnections::default());
    /// Whether this thread has a burst of writes ahead (a cheap look for every operation).
    static BURSTING: Cell<bool> = const { Cell::new(false) };
}

/// Ends this thread's burst of writes ahead, if it has one: the slots left go back, and the
/// values written ahead (sent to a buffered channel in another OS process without waiting
/// for an answer) are carried out at their home before this returns.
///
/// A write ahead returns before its value is in the channel's buffer. Every other channel
/// operation of the same thread, the end of a process, of a task's poll and of a thread end
/// the burst first, so nothing can learn that the write returned before its value is in
/// the buffer; and a burst never outlives what the thread learns from elsewhere. It costs
/// one thread-local look when there is no burst.
pub(crate) fn flush_writes_ahead() {
    if !BURSTING.with(Cell::get) {
        return;
    }
    // A thread whose connections are being torn down has nothing left to settle.
    let _ = CONNECTIONS.try_with(|connections| {
        if let Ok(mut connections) = connections.try_borrow_mut() {
            connections.end_burst(None);
        }
    });
}

/// How many writes this OS process sent ahead (for tests).
static SENT_AHEAD: AtomicU64 = AtomicU64::new(0);

/// How many writes to channels in other OS processes this OS process sent ahead, without
/// waiting for an answer (for tests).
#[doc(hidden)]
pub fn writes_sent_ahead() -> u64 {
    SENT_AHEAD.load(Ordering::Relaxed)
}

impl RemoteEnd {
    /// A blocking write of a plain value was carried out the usual way, and the home
    /// reserved `granted` slots (perhaps none): this thread's burst on this end goes on.
    pub(crate) fn wrote(&self, granted: u32) {
        CONNECTIONS.with(|connections| {
            let mut connections = in_use(connections);
            let burst = connections.burst.get_or_insert_with(|| Burst {
                address: self.link.address.clone(),
                end: self.end,
                credit: 0,
                unsettled: false,
                asking: false,
            });
            burst.credit += granted;
            burst.unsettled = false; // the answer came after every write ahead before it
            burst.asking = true;
        });
        BURSTING.with(|bursting| bursting.set(true));
    }

    /// Writes a value, `encode` encoding it straight into the request (see
    /// `Link::write_encoding`): ahead, into a slot of this thread's burst, or the usual way.
    /// A home that cannot be reached, or answers that it does not know the end, is a
    /// poisoned channel.
    pub(crate) fn write_encoding(
        &self,
        wait: Wait,
        encode: impl FnOnce(&mut Encoder<'_>) -> postcard::Result<()>,
    ) -> Written {
        let waiting = matches!(wait, Wait::Forever).then(|| Waiting::Write(self.name.clone()));
        match self.link.write_encoding(self.end, wait, waiting, encode) {
            Written::Ahead => {
                self.ahead.fetch_add(1, Ordering::AcqRel);
                SENT_AHEAD.fetch_add(1, Ordering::Relaxed);
                Written::Ahead
            }
            Written::Answered {
                reply: OperationReply::Unknown,
                ..
            }
            | Written::Unreachable => Written::Answered {
                reply: OperationReply::Failed(self.poisoned()),
                streams: false,
            },
            written => written,
        }
    }
}
