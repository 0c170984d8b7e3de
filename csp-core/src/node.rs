//! This OS process as a member of a network: where other OS processes reach it.
//!
//! The node listens on a Unix socket with a random name in a private directory (mode 0700),
//! started when something needs it (a child being placed, an end lent out, an end held by
//! another OS process) and closed, its directory removed, when nothing does (or, if this OS
//! process is killed first, by the next node to start on the machine). Every connection
//! must pass the network's HMAC handshake before a single frame is decoded; its first
//! message then says what it is for (see [`net::message`](crate::net::message)).
//!
//! Channels whose ends are held in other OS processes keep living here, at their *home*:
//!
//! - A *ticket* is a counted end lent out: created when an end is serialized, so that the side
//!   stays alive while the token travels, and claimed when the receiving OS process attaches.
//! - An *attached end* is one another OS process holds. Its operations arrive on that
//!   thread's operations connection and are carried out here by a mirror thread, on the real
//!   channel, with the same rules as local operations. A read that waits is answered by the
//!   thread that completes it, on the mirror's connection (see [`mirror`](crate::mirror)), and a
//!   request that completes at once is often carried out by a thread here that waits for it
//!   (see [`mirror`](crate::mirror)). If the holder's session closes while it still holds
//!   ends, the holder is gone: those channels are poisoned.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::Duration;

use crate::home::HomeEnd;
use crate::net::address::Address;
use crate::net::auth::{self, Secret};
use crate::net::connection::Connection;
use crate::net::message::{Hello, SelectorRequest, SessionReply, SessionRequest};
use crate::wait::Selector;

/// The environment variable carrying the network's secret to child OS processes.
pub(crate) const ENV_SECRET: &str = "CSP_NETWORK_SECRET";

/// How long a connecting peer may take to authenticate and say what it wants.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

/// The network's secret: inherited from the parent, or made by the root of the network.
pub(crate) fn secret() -> &'static Secret {
    static SECRET: OnceLock<Secret> = OnceLock::new();
    SECRET.get_or_init(|| {
        std::env::var(ENV_SECRET)
            .ok()
            .and_then(|hex| Secret::from_hex(&hex))
            .unwrap_or_else(Secret::random)
    })
}

/// A random identity for this OS process within the network.
pub(crate) fn process_id() -> u64 {
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        u64::from_le_bytes(bytes)
    })
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).expect("the operating system's random source");
    raw.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An end another OS process holds here, through one of its sessions.
struct Attached {
    session: u64,
    end: Arc<dyn HomeEnd>,
    _hold: Hold,
}

/// An end lent out, waiting to be claimed.
pub(crate) struct Ticket {
    end: Box<dyn HomeEnd>,
    hold: Hold,
    /// The session it was lent for (to pass an end on), or `None` if lent by this process.
    lender: Option<u64>,
}

impl Ticket {
    pub(crate) fn into_end(self) -> Box<dyn HomeEnd> {
        self.end
    }
}

struct Listening {
    directory: PathBuf,
    address: PathBuf,
}

impl Drop for Listening {
    fn drop(&mut self) {
        // Wake the accept loop so that it notices, then clean up.
        let _ = UnixStream::connect(&self.address);
        let _ = std::fs::remove_file(&self.address);
        let _ = std::fs::remove_dir(&self.directory);
    }
}

#[derive(Default)]
struct Users {
    count: usize,
    listening: Option<Listening>,
    generation: u64,
}

/// This OS process's node. There is one, made on first use.
pub(crate) struct Node {
    users: Mutex<Users>,
    children: Mutex<HashMap<String, mpsc::Sender<Connection>>>,
    tickets: Mutex<HashMap<u64, Ticket>>,
    attached: Mutex<HashMap<u64, Attached>>,
    next_id: AtomicU64,
    /// The operations connections each OS process (by its id) has open to this node, by
    /// the selector of the thread serving each: the frames a dead process left in them are
    /// carried out before its ends are dropped, and a wait they do for it is stopped.
    operations: Mutex<HashMap<u64, Vec<Arc<Selector>>>>,
    operations_closed: Condvar,
}

/// Keeps the node listening while it lives.
#[derive(Debug)]
pub(crate) struct Hold {
    address: Address,
}

impl Hold {
    pub(crate) fn address(&self) -> &Address {
        &self.address
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let stopped = {
            let mut users = lock(&node().users);
            users.count -= 1;
            if users.count == 0 {
                users.listening.take()
            } else {
                None
            }
        };
        drop(stopped);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// This OS process's node.
pub(crate) fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| Node {
        users: Mutex::new(Users::default()),
        children: Mutex::new(HashMap::new()),
        tickets: Mutex::new(HashMap::new()),
        attached: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        operations: Mutex::new(HashMap::new()),
        operations_closed: Condvar::new(),
    })
}

impl Node {
    /// Keeps the node listening (starting it if needed) until the hold is dropped.
    pub(crate) fn hold(&'static self) -> io::Result<Hold> {
        let mut users = lock(&self.users);
        if users.listening.is_none() {
            remove_stale_directories(&std::env::temp_dir());
            let directory = std::env::temp_dir().join(format!(
                "{DIRECTORY_PREFIX}{}-{}",
                std::process::id(),
                random_hex(8)
            ));
            std::fs::DirBuilder::new().mode(0o700).create(&directory)?;
            let address = directory.join(random_hex(8));
            let socket = UnixListener::bind(&address)?;
            users.generation += 1;
            let generation = users.generation;
            thread::Builder::new()
                .name("csp-node".into())
                .spawn(move || accept_loop(&socket, generation))?;
            users.listening = Some(Listening { directory, address });
        }
        users.count += 1;
        let path = users.listening.as_ref().expect("listening").address.clone();
        Ok(Hold {
            address: Address::Unix(path),
        })
    }

    /// Whether `address` is where this node listens now.
    pub(crate) fn is_at(&self, address: &Address) -> bool {
        let Address::Unix(path) = address;
        lock(&self.users)
            .listening
            .as_ref()
            .is_some_and(|listening| &listening.address == path)
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits for the child with `token` to connect; see [`placement`](crate::placement).
    pub(crate) fn expect_child(&self, token: &str) -> mpsc::Receiver<Connection> {
        let (sender, receiver) = mpsc::channel();
        lock(&self.children).insert(token.to_string(), sender);
        receiver
    }

    pub(crate) fn forget_child(&self, token: &str) {
        lock(&self.children).remove(token);
    }

    /// Lends `end` out (for `lender`'s session, if another process asked); returns the
    /// ticket's number and where to claim it.
    pub(crate) fn lend(
        &'static self,
        end: Box<dyn HomeEnd>,
        lender: Option<u64>,
    ) -> io::Result<(u64, Address)> {
        let hold = self.hold()?;
        let address = hold.address().clone();
        let ticket = self.next_id();
        lock(&self.tickets).insert(ticket, Ticket { end, hold, lender });
        Ok((ticket, address))
    }

    /// Takes a ticket back (claimed here, or no longer needed).
    pub(crate) fn take_ticket(&self, ticket: u64) -> Option<Ticket> {
        lock(&self.tickets).remove(&ticket)
    }

    /// Attaches an end for `session`, keeping the node listening with `hold`, which must be
    /// held already (so that the node never stops in between and moves).
    fn attach(&self, session: u64, end: Box<dyn HomeEnd>, hold: Hold) -> u64 {
        let id = self.next_id();
        let end = Arc::from(end);
        lock(&self.attached).insert(
            id,
            Attached {
                session,
                end,
                _hold: hold,
            },
        );
        id
    }

    /// Attaches `end` as if another OS process had claimed it (for tests).
    #[cfg(test)]
    pub(crate) fn attach_for_test(&'static self, end: Box<dyn HomeEnd>) -> u64 {
        let hold = self.hold().expect("the node listens");
        self.attach(0, end, hold)
    }

    pub(crate) fn attached(&self, id: u64) -> Option<Arc<dyn HomeEnd>> {
        lock(&self.attached)
            .get(&id)
            .map(|attached| Arc::clone(&attached.end))
    }

    fn detach(&self, id: u64) {
        let removed = lock(&self.attached).remove(&id);
        drop(removed); // outside the lock: dropping an end takes its channel's lock
    }

    /// Waits (bounded) until `ahead` writes ahead through `end` were carried out: they
    /// come on operations connections, and a detach on the session may overtake them.
    fn settle_writes_ahead(&self, end: u64, ahead: u64) {
        let started = std::time::Instant::now();
        while ahead > 0
            && self.attached(end).is_some_and(|end| end.applied() < ahead)
            && started.elapsed() < SETTLE_LIMIT
        {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    /// Waits (bounded) until `process` has no operations connection open here: a process
    /// that died left its last writes ahead in them, and they are carried out first.
    ///
    /// A thread serving it that waits on a channel for it (a read nobody writes, say) would
    /// never see it is gone: that wait is stopped, so it takes no value for the dead reader.
    fn drain_operations_of(&self, process: u64) {
        let started = std::time::Instant::now();
        let mut operations = lock(&self.operations);
        while let Some(serving) = operations.get(&process) {
            if started.elapsed() > SETTLE_LIMIT {
                return;
            }
            for selector in serving {
                if selector.try_declare_deadlock() {
                    selector.unpark();
                }
            }
            operations = self
                .operations_closed
                .wait_timeout(operations, std::time::Duration::from_millis(5))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The session closed: poison and drop every end still attached through it, and every
    /// end lent on its behalf and not yet claimed (its holder died with them).
    fn session_gone(&self, session: u64, process: u64) {
        let has_orphans = lock(&self.attached)
            .values()
            .any(|end| end.session == session);
        if has_orphans {
            self.drain_operations_of(process);
        }
        let orphans: Vec<Attached> = {
            let mut attached = lock(&self.attached);
            let ids: Vec<u64> = attached
                .iter()
                .filter(|(_, end)| end.session == session)
                .map(|(&id, _)| id)
                .collect();
            ids.iter().filter_map(|id| attached.remove(id)).collect()
        };
        let unclaimed: Vec<Ticket> = {
            let mut tickets = lock(&self.tickets);
            let ids: Vec<u64> = tickets
                .iter()
                .filter(|(_, ticket)| ticket.lender == Some(session))
                .map(|(&id, _)| id)
                .collect();
            ids.iter().filter_map(|id| tickets.remove(id)).collect()
        };
        for orphan in &orphans {
            orphan.end.peer_died();
        }
        for ticket in &unclaimed {
            ticket.end.peer_died();
        }
    }
}

/// How a node's private directory is named: this prefix, the owner's process id, a random
/// part.
const DIRECTORY_PREFIX: &str = "csp-node-";

/// Removes the directories of nodes whose OS process is gone without cleaning up (killed with
/// SIGKILL, say). Only this user's empty-but-for-sockets directories of dead owners are
/// touched; anything unexpected inside is left alone.
fn remove_stale_directories(temp: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|name| name.strip_prefix(DIRECTORY_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(owner), None)
            .map_or_else(|errno| errno != nix::errno::Errno::ESRCH, |()| true);
        if alive {
            continue;
        }
        let path = entry.path();
        if let Ok(inside) = std::fs::read_dir(&path) {
            for socket in inside.flatten() {
                use std::os::unix::fs::FileTypeExt;
                if socket.file_type().is_ok_and(|kind| kind.is_socket()) {
                    let _ = std::fs::remove_file(socket.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&path); // fails, harmlessly, if anything else is inside
    }
}

fn accept_loop(socket: &UnixListener, generation: u64) {
    crate::deadlock::serve_only();
    for stream in socket.incoming() {
        if lock(&node().users).generation != generation || lock(&node().users).listening.is_none() {
            return;
        }
        let Ok(stream) = stream else {
            continue;
        };
        // Authenticate off the accept thread: a silent peer must not hold up the others.
        let _ = thread::Builder::new()
            .name("csp-connection".into())
            .spawn(move || {
                if let Err(error) = serve(stream) {
                    eprintln!("csp: a connection failed: {error}");
                }
            });
    }
}

/// Authenticates a connection and serves it for what it says it is.
fn serve(mut stream: UnixStream) -> Result<(), String> {
    // Serving other OS processes: not an actor of this one (see `deadlock`).
    crate::deadlock::serve_only();
    stream
        .set_read_timeout(Some(HANDSHAKE_LIMIT))
        .map_err(|error| error.to_string())?;
    auth::accept(&mut stream, secret()).map_err(|error| error.to_string())?;
    let mut connection = Connection::new(stream).map_err(|error| error.to_string())?;
    let hello: Hello = connection.receive().map_err(|error| error.to_string())?;
    connection
        .set_read_timeout(None)
        .map_err(|error| error.to_string())?;
    match hello {
        Hello::Child { token } => {
            let waiting = lock(&node().children).remove(&token);
            match waiting {
                Some(sender) => sender
                    .send(connection)
                    .map_err(|_| "the placement gave up".into()),
                None => Err("a child with an unknown or used token".into()),
            }
        }
        Hello::Session { process } => {
            serve_session(&mut connection, process);
            Ok(())
        }
        Hello::Operations { process } => {
            connection
                .accept_shared_memory()
                .map_err(|error| format!("moving to shared memory: {error}"))?;
            let node = node();
            let selector = Selector::of_this_thread();
            lock(&node.operations)
                .entry(process)
                .or_default()
                .push(Arc::clone(&selector));
            crate::mirror::serve_operations(connection);
            let mut operations = lock(&node.operations);
            if let Some(open) = operations.get_mut(&process) {
                open.retain(|serving| !Arc::ptr_eq(serving, &selector));
                if open.is_empty() {
                    operations.remove(&process);
                }
            }
            node.operations_closed.notify_all();
            Ok(())
        }
        Hello::Selectors { process: _ } => {
            serve_selectors(&mut connection);
            Ok(())
        }
    }
}

/// Claims and rechecks of this OS process's selectors, asked by homes of channels its
/// alternations wait on. Never blocks and never takes a lock other than the export table's.
fn serve_selectors(connection: &mut Connection) {
    while let Ok(request) = connection.receive::<SelectorRequest>() {
        match request {
            SelectorRequest::Claim { id, round, guard } => {
                let won = Selector::find_exported(id).is_some_and(|selector| {
                    let won = usize::try_from(guard)
                        .is_ok_and(|guard| selector.try_select_in_round(round, guard));
                    if won {
                        selector.unpark();
                    }
                    won
                });
                if connection.send(&won).is_err() {
                    break;
                }
            }
            SelectorRequest::Recheck { id, round } => {
                if let Some(selector) = Selector::find_exported(id) {
                    if selector.try_recheck_in_round(round) {
                        selector.unpark();
                    }
                }
            }
        }
    }
}

/// How long a detach waits for the writes ahead it says were sent, and a dead process's
/// ends wait for its operations connections to be drained.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

fn serve_session(connection: &mut Connection, process: u64) {
    let node = node();
    // Ends are attached per session, not per process: a process whose old session is still
    // closing may already have opened a new one.
    let session = node.next_id();
    while let Ok(request) = connection.receive::<SessionRequest>() {
        let reply = match request {
            SessionRequest::Attach {
                ticket,
                fingerprint,
            } => match node.take_ticket(ticket) {
                None => Some(SessionReply::Refused {
                    reason: format!("ticket {ticket} is unknown or was claimed already"),
                }),
                Some(claimed) if claimed.end.fingerprint() != fingerprint => {
                    let reason = format!(
                        "channel {} carries `{}`, not the type this end expects",
                        claimed.end.name(),
                        claimed.end.type_name()
                    );
                    // Not claimed: the ticket stays for its lender to drop.
                    lock(&node.tickets).insert(ticket, claimed);
                    Some(SessionReply::Refused { reason })
                }
                Some(Ticket { end, hold, .. }) => Some(SessionReply::Attached {
                    end: node.attach(session, end, hold),
                }),
            },
            SessionRequest::CloneEnd { end } => Some(match (node.attached(end), node.hold()) {
                (Some(existing), Ok(hold)) => SessionReply::Attached {
                    end: node.attach(session, existing.duplicate(), hold),
                },
                (None, _) => unknown(end),
                (_, Err(error)) => SessionReply::Refused {
                    reason: error.to_string(),
                },
            }),
            SessionRequest::Ticket { end } => Some(match node.attached(end) {
                Some(existing) => match node.lend(existing.duplicate(), Some(session)) {
                    Ok((ticket, _)) => SessionReply::Ticket { ticket },
                    Err(error) => SessionReply::Refused {
                        reason: error.to_string(),
                    },
                },
                None => unknown(end),
            }),
            SessionRequest::DropTicket { ticket } => {
                drop(node.take_ticket(ticket));
                None
            }
            SessionRequest::Detach { end, ahead } => {
                node.settle_writes_ahead(end, ahead);
                node.detach(end);
                None
            }
        };
        if let Some(reply) = reply {
            if connection.send(&reply).is_err() {
                break;
            }
        }
    }
    node.session_gone(session, process);
}

fn unknown(end: u64) -> SessionReply {
    SessionReply::Refused {
        reason: format!("end {end} is not attached here"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frame;
    use crate::transfer::TicketScope;
    use crate::{Channel, Reader};
    use std::io::{Read, Write};

    fn connect_raw(hold: &Hold) -> UnixStream {
        let stream = hold.address().connect().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    }

    /// The node still serves a correct peer after the bad one.
    fn still_serves(hold: &Hold) {
        let mut stream = connect_raw(hold);
        auth::connect(&mut stream, secret()).expect("a correct peer is still admitted");
    }

    #[test]
    fn directories_of_dead_nodes_are_removed_and_live_ones_kept() {
        let temp = std::env::temp_dir().join(format!("csp-stale-test-{}", random_hex(4)));
        std::fs::create_dir(&temp).unwrap();
        // A pid that cannot exist (above the kernel's limit) and this process's own.
        let dead = temp.join(format!("{DIRECTORY_PREFIX}2147483647-aa"));
        let live = temp.join(format!("{DIRECTORY_PREFIX}{}-bb", std::process::id()));
        let foreign = temp.join("csp-something-else");
        for directory in [&dead, &live, &foreign] {
            std::fs::create_dir(directory).unwrap();
        }
        let _socket = UnixListener::bind(dead.join("sock")).unwrap();
        remove_stale_directories(&temp);
        assert!(!dead.exists(), "the dead node's directory is removed");
        assert!(live.exists() && foreign.exists(), "others are kept");
        std::fs::remove_dir_all(&temp).unwrap();
    }

    #[test]
    fn the_socket_lives_in_a_private_directory() {
        use std::os::unix::fs::PermissionsExt;
        let hold = node().hold().unwrap();
        let Address::Unix(path) = hold.address();
        let directory = path.parent().unwrap();
        let mode = std::fs::metadata(directory).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_peer_with_the_wrong_secret_is_refused_before_anything_is_decoded() {
        let hold = node().hold().unwrap();
        let mut stream = connect_raw(&hold);
        assert!(auth::connect(&mut stream, &Secret::random()).is_err());
        still_serves(&hold);
    }

    #[test]
    fn random_bytes_and_truncated_frames_close_only_that_connection() {
        let hold = node().hold().unwrap();
        // Garbage instead of a handshake.
        let mut stream = connect_raw(&hold);
        let _ = stream.write_all(&[0xff; 200]);
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest); // the node hangs up
        // A valid handshake, then a frame announcing far more than it sends.
        let mut stream = connect_raw(&hold);
        auth::connect(&mut stream, secret()).unwrap();
        let _ = stream.write_all(&u32::MAX.to_le_bytes());
        let _ = stream.write_all(b"short");
        drop(stream);
        // A valid handshake, then a frame that does not decode as a Hello.
        let mut stream = connect_raw(&hold);
        auth::connect(&mut stream, secret()).unwrap();
        frame::write_frame(&mut stream, &[200, 1, 2, 3], 64).unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        still_serves(&hold);
    }

    #[test]
    fn an_end_of_the_wrong_type_is_refused_naming_the_channel_and_both_types() {
        let channel = Channel::<u32>::named("typed");
        let (bytes, lent) =
            TicketScope::collect(|| postcard::to_stdvec(&channel.reader()).unwrap());
        let error = postcard::from_bytes::<Reader<String>>(&bytes)
            .map(|_| ())
            .unwrap_err();
        drop(lent);
        let message = crate::transfer::explain(&error);
        assert_eq!(
            message,
            "channel 'typed' sent a Reader<u32>, but it is received as a \
             Reader<alloc::string::String>"
        );
        // The end was not claimed: the channel still has exactly its one reader.
        assert!(format!("{channel:?}").contains("readers: 0"), "{channel:?}");
    }

    #[test]
    fn serializing_an_end_outside_a_transfer_is_an_error() {
        let channel = Channel::<u32>::new();
        let error = postcard::to_stdvec(&channel.reader()).unwrap_err();
        let message = crate::transfer::explain(&error);
        assert!(
            message.starts_with("channel ends can only be serialized by csp"),
            "{message}"
        );
    }
}
