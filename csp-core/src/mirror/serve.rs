//! A mirror thread: carries out one remote thread's operations at the channels' home.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Mirror, lock};
use crate::home::{Answer, HomeEnd, HomeReply};
use crate::net::connection::Connection;
use crate::net::message::{Operation, OperationReply, OperationRequest, Wait};
use crate::node::node;
use crate::remote::Claimant;
use crate::wait::{MAX_GUARDS, Selector};

/// The entries a remote alternation left here through one mirror: (end, guard) to the end
/// and the proxy selector standing for the alternation's own.
type Registered = HashMap<(u64, u64), (Arc<dyn HomeEnd>, Arc<Selector>)>;

/// What a mirror thread does with one request.
enum Step {
    /// Send this reply to the remote thread (no reply: a write ahead).
    Reply(Option<HomeReply>),
    /// A read that waits for ever, after a write if there is one (a `WriteThenRead`):
    /// carried out once the frame is let go, so that whoever completes the read can send
    /// the answer on this connection itself (see [`HomeEnd::read_answering`]).
    Read {
        write: Option<(Arc<dyn HomeEnd>, Vec<u8>)>,
        reader: Arc<dyn HomeEnd>,
    },
}

/// The ends a mirror thread's last requests named: most requests name one of a few ends
/// (a round trip alternates between two, a call names its request and reply channels), and
/// looking them up here spares the node's table and its lock. Held weakly: an end detached
/// meanwhile must really go.
#[derive(Default)]
struct RecentEnds {
    ends: Vec<(u64, std::sync::Weak<dyn HomeEnd>)>,
}

impl RecentEnds {
    /// How many ends are remembered.
    const KEPT: usize = 4;

    fn find(&mut self, id: u64) -> Option<Arc<dyn HomeEnd>> {
        if let Some(end) = self
            .ends
            .iter()
            .find(|(known, _)| *known == id)
            .and_then(|(_, end)| end.upgrade())
        {
            return Some(end);
        }
        let end = node().attached(id)?;
        self.ends
            .retain(|(known, end)| *known != id && end.strong_count() > 0);
        if self.ends.len() == Self::KEPT {
            self.ends.remove(0);
        }
        self.ends.push((id, Arc::downgrade(&end)));
        Some(end)
    }
}

/// A mirror thread: carries out one remote thread's operations, one at a time.
///
/// A read that waits is answered by whoever completes it: the writer that delivers the
/// value encodes it and sends it on this connection, then wakes the mirror thread, which
/// only goes back to reading requests. The remote reader gets its value one hand-over
/// between threads sooner.
pub(crate) fn serve_operations(connection: Connection) {
    // Threads of this OS process that wait in a channel operation help with requests that
    // complete at once (see `mirror`); the bookkeeping between requests is shared with them.
    let mirror = Mirror::start(connection);
    let connection = &mirror.connection;
    let mut registered = Registered::new();
    let mut recent = RecentEnds::default();
    // A pattern's server woken by a request carried out here runs on this thread.
    let _helping = crate::executor::Helping::start();
    loop {
        // The server woken by the last request, if any, answers it before the next.
        crate::executor::run_helped();
        mirror.wait_for_request();
        // One step at a time, whoever carries it out.
        let mut between = mirror.step();
        // A written value's encoding follows its request in the frame: it is decoded from
        // there, borrowed, without a copy.
        let received = lock(connection).receive_with(|request: OperationRequest, payload| {
            // A new request: the answer before it was read.
            between.answer_was_read();
            mirror.serves(&request.operation);
            if matches!(request.operation, Operation::Sync) {
                // Everything before it on this connection was carried out.
                return Step::Reply(Some(OperationReply::Done.into()));
            }
            let end = recent.find(request.end);
            let answered = !matches!(
                request.operation,
                Operation::WriteAhead | Operation::ReturnCredit { .. }
            );
            let Some(end) = end else {
                if matches!(request.operation, Operation::WriteAhead) {
                    eprintln!(
                        "csp: a value written ahead reached an end that is no longer attached \
                         (end {}); it is lost",
                        request.end
                    );
                }
                return Step::Reply(answered.then_some(OperationReply::Unknown.into()));
            };
            match request.operation {
                Operation::Read {
                    wait: Wait::Forever,
                } => Step::Read {
                    write: None,
                    reader: end,
                },
                Operation::WriteThenRead { value, then_read } => match recent.find(then_read) {
                    Some(reader) => Step::Read {
                        write: Some((end, value)),
                        reader,
                    },
                    None => Step::Reply(Some(OperationReply::Unknown.into())),
                },
                operation => Step::Reply(perform(
                    &end,
                    request.end,
                    operation,
                    payload,
                    &mut registered,
                )),
            }
        });
        let Ok(step) = received else {
            // Gone: if it never read the value last sent to it, that value is not lost
            // where it can be put back (a channel many clients share).
            if let Some((channel, value)) = between.delivering.take()
                && lock(connection).peer_left_unread()
            {
                channel.take_back(&value);
            }
            break;
        };
        let reply = match step {
            Step::Reply(reply) => reply,
            Step::Read { write, reader } => {
                // Whoever completes the read answers and settles the step (see `mirror`).
                drop(between);
                let answer = answer_for(mirror.shared());
                // A server handed the request runs here while this waits for its answer.
                let reply =
                    crate::executor::help_while_waiting(|| write_then_read(write, &reader, answer));
                if reply.is_none() {
                    // Answered by the thread that completed the read.
                    if mirror.answer_failed() {
                        break;
                    }
                    continue;
                }
                between = mirror.step();
                reply
            }
        };
        // A write ahead has no answer.
        let Some(reply) = reply else {
            continue;
        };
        match super::send_reply(&mut lock(connection), reply) {
            Ok(left) => *between = left,
            Err(()) => break,
        }
    }
    // The remote thread is gone: withdraw whatever its alternation had left here.
    for ((_, guard), (home_end, proxy)) in registered {
        let _ = home_end.unregister(&proxy, guard as usize);
    }
}

/// Writes `write`'s value if there is one, then reads from `reader` for ever; `None` if
/// the thread that completed the read sent the answer through `answer`.
fn write_then_read(
    write: Option<(Arc<dyn HomeEnd>, Vec<u8>)>,
    reader: &Arc<dyn HomeEnd>,
    answer: Answer,
) -> Option<HomeReply> {
    if let Some((writer, value)) = write {
        match writer.perform(Operation::Write {
            value,
            wait: Wait::Forever,
        }) {
            HomeReply::Message(OperationReply::Done) => {}
            HomeReply::Message(OperationReply::Failed(error)) => {
                return Some(OperationReply::NotWritten(error).into());
            }
            other => return Some(other),
        }
    }
    reader.read_answering(answer)
}

/// How a thread that completes a mirror thread's read sends the answer on its connection.
fn answer_for(mirror: Arc<Mirror>) -> Answer {
    Arc::new(move |reply: HomeReply| mirror.answer(reply))
}

/// Carries out one operation; `None` for a write ahead, which has no answer.
fn perform(
    end: &Arc<dyn HomeEnd>,
    id: u64,
    operation: Operation,
    payload: &[u8],
    registered: &mut Registered,
) -> Option<HomeReply> {
    Some(match operation {
        Operation::WriteFollowing {
            wait, ask_credit, ..
        } => match end.write_encoded(payload, wait) {
            OperationReply::Done if ask_credit => match end.grant() {
                0 => OperationReply::Done.into(),
                granted => OperationReply::Granted(granted).into(),
            },
            reply => reply.into(),
        },
        Operation::WriteAhead => {
            if !end.write_ahead(payload) {
                // The writer was told its value is on its way: losing it silently is not an
                // option.
                eprintln!(
                    "csp: channel {}: a value written ahead had no slot or could not be \
                     decoded; the channel is poisoned",
                    end.name()
                );
                end.poison();
            }
            return None;
        }
        Operation::Sync => OperationReply::Done.into(),
        Operation::ReturnCredit { count } => {
            end.return_credit(count);
            return None;
        }
        Operation::Register {
            guard,
            action,
            selector,
        } => {
            let Some(index) = usize::try_from(guard).ok().filter(|&i| i < MAX_GUARDS) else {
                return Some(OperationReply::Unknown.into());
            };
            let proxy = Selector::proxy(Box::new(Claimant::new(selector)));
            let reply = end.register(&proxy, index, action);
            if matches!(reply, OperationReply::Ready(_)) {
                registered.insert((id, guard), (Arc::clone(end), proxy));
            }
            reply.into()
        }
        Operation::Unregister { guard } => match registered.remove(&(id, guard)) {
            Some((home_end, proxy)) => home_end.unregister(&proxy, guard as usize),
            None => OperationReply::NotReady.into(),
        },
        operation => end.perform(operation),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Channel;
    use crate::home::HomeReader;
    use std::time::{Duration, Instant};

    const LIMIT: Duration = Duration::from_secs(10);

    /// A mirror thread serving `here`, which reports when it ends.
    fn serving(here: Connection) -> std::sync::mpsc::Receiver<()> {
        let (ended, end) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            serve_operations(here);
            let _ = ended.send(());
        });
        end
    }

    /// A remote thread reads a value from a channel that takes values back from readers that
    /// died, and dies, with the answer unread (`read_it`: or after reading it).
    fn a_remote_reader_dies(read_it: bool) -> Channel<u32> {
        let channel = Channel::<u32>::shared_by_clients("queue", 4);
        channel.writer().write(9).unwrap();
        let end = node().attach_for_test(Box::new(HomeReader::new(channel.reader())));
        let (here, mut there) = Connection::shared_pair();
        let ended = serving(here);
        let read = Operation::Read {
            wait: Wait::Forever,
        };
        there
            .send(&OperationRequest {
                end,
                operation: read,
            })
            .unwrap();
        let started = Instant::now();
        while !there.frame_waiting() {
            assert!(started.elapsed() < LIMIT, "no answer came");
            std::thread::yield_now();
        }
        if read_it {
            let value = there.receive_with(|_: OperationReply, value| value.to_vec());
            assert_eq!(value.unwrap(), postcard::to_stdvec(&9u32).unwrap());
        }
        drop(there);
        ended
            .recv_timeout(LIMIT)
            .expect("the mirror notices its remote thread is gone");
        channel
    }

    #[test]
    fn a_value_its_dead_reader_never_read_is_put_back_and_one_it_read_is_not() {
        let unread = a_remote_reader_dies(false);
        assert_eq!(unread.reader().try_read().unwrap(), 9, "put back");
        let read = a_remote_reader_dies(true);
        assert!(
            read.reader().try_read().is_err(),
            "not put back: it was read"
        );
    }
}
