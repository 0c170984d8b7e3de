//! Channel ends kept at their home on behalf of other OS processes.
//!
//! When an end crosses to another OS process (see [`transfer`](crate::transfer)), the
//! channel stays where it was made, its *home*, and the end there becomes a [`HomeEnd`]: a
//! type-erased reader or writer that carries out the remote thread's operations, which a
//! mirror thread or a helper (see [`mirror`](crate::mirror))
//! hands it, decoding the values written and handing on the values read still typed
//! ([`HomeReply::Value`]), to be encoded straight into the answer's frame. A home writer
//! also keeps the slots it reserved for its remote end's writes ahead ([`Credit`]).

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::channel::core::{Core, Side};
use crate::channel::{Deadline, Reader, Shortfall, Writer};
use crate::error::ChannelName;
use crate::net::encoder::Encoder;
use crate::net::message::{Action, Operation, OperationReply, Wait};
use crate::transfer::{explain, fingerprint};
use crate::wait::Selector;

/// A channel end kept at its home on behalf of another OS process.
pub(crate) trait HomeEnd: Send + Sync + 'static {
    fn fingerprint(&self) -> u64;
    fn type_name(&self) -> &'static str;
    fn name(&self) -> &ChannelName;
    fn duplicate(&self) -> Box<dyn HomeEnd>;
    fn poison(&self);
    /// The OS process that held this end died: poison the channel, unless it is one that
    /// survives dead peers (see `Core::survive_dead_peers`).
    fn peer_died(&self);
    fn perform(&self, operation: Operation) -> HomeReply;
    /// Reads, waiting for ever (a reader's end only): a counterpart that delivers the value
    /// while the calling thread waits gives the reply to `answer` itself. The reply for the
    /// caller to send, or `None` if `answer` had it.
    fn read_answering(&self, _answer: Answer) -> Option<HomeReply> {
        Some(self.perform(Operation::Read {
            wait: Wait::Forever,
        }))
    }
    /// Writes the value `bytes` encode (a writer's end only).
    fn write_encoded(&self, _bytes: &[u8], _wait: Wait) -> OperationReply {
        OperationReply::Unknown
    }
    /// Puts the value `bytes` encode into a slot granted before (a write ahead); false if
    /// none was granted or the bytes are not a value of the channel's type.
    fn write_ahead(&self, _bytes: &[u8]) -> bool {
        false
    }
    /// Reserves slots for the remote end to write ahead into; returns how many more.
    fn grant(&self) -> u32 {
        0
    }
    /// How many writes ahead have been carried out.
    fn applied(&self) -> u64 {
        0
    }
    /// Gives back `count` granted slots the remote end will not use.
    fn return_credit(&self, _count: u32) {}
    /// Leaves an entry for a remote alternation's guard; `Ready` says if already ready.
    fn register(&self, selector: &Arc<Selector>, guard: usize, action: Action) -> OperationReply;
    /// Withdraws that entry (see [`Operation::Unregister`]).
    fn unregister(&self, selector: &Arc<Selector>, guard: usize) -> HomeReply;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// What a home end answers a remote thread's operation with.
pub(crate) enum HomeReply {
    Message(OperationReply),
    /// A value read: encoded only as the answer is sent, straight into its frame.
    Value(Box<dyn Outgoing>),
}

impl From<OperationReply> for HomeReply {
    fn from(reply: OperationReply) -> Self {
        HomeReply::Message(reply)
    }
}

/// A value taken for a reader in another OS process, still typed: it is encoded where the
/// answer is sent, straight into the frame (see [`Encoder`]), and dropped once sent, as a
/// value written here is once read. If its channel takes values back from readers that
/// died (see `Core::survive_dead_peers`), its encoding is kept until the reader's next
/// request shows it arrived, to be put back otherwise (see [`TakesBack`]): the value itself
/// is not kept, since whatever it holds (channel ends, say) must go when it is delivered.
pub(crate) trait Outgoing: Send {
    fn encode(&self, encoder: &mut Encoder<'_>) -> postcard::Result<()>;
    /// The value cannot be encoded: poisons its channel, loudly, and gives the reply to
    /// send instead.
    fn refused(&self, error: &postcard::Error) -> OperationReply;
    /// Where the value goes back if its reader dies without it: only a channel that takes
    /// values back from readers that died has such a place.
    fn takes_back(&self) -> Option<Box<dyn TakesBack>>;
    /// Puts it back at the front of its channel: it could not be sent (its channel is one
    /// that [`takes_back`](Outgoing::takes_back)).
    fn put_back(self: Box<Self>);
    /// A value that cannot reach its reader and cannot be put back: poisons the channel
    /// rather than vanish unnoticed.
    fn lost(&self, why: &dyn std::fmt::Display);
}

/// A channel that takes back, from its encoding, a value sent to a reader that died without
/// reading it. Held weakly: a channel nobody uses any more takes nothing back.
pub(crate) trait TakesBack: Send {
    fn take_back(&self, encoded: &[u8]);
}

impl<T: DeserializeOwned + Send + 'static> TakesBack for std::sync::Weak<Core<T>> {
    fn take_back(&self, encoded: &[u8]) {
        if let (Some(core), Ok(value)) = (self.upgrade(), crate::net::encoder::decode(encoded)) {
            core.restore(value);
        }
    }
}

/// A value taken from `core` for a remote reader.
struct Taken<T> {
    value: T,
    core: Arc<Core<T>>,
}

/// The reply carrying `value`, read from `core` for a remote reader.
fn taken<T: Serialize + DeserializeOwned + Send + 'static>(
    value: T,
    core: &Arc<Core<T>>,
) -> HomeReply {
    HomeReply::Value(Box::new(Taken {
        value,
        core: Arc::clone(core),
    }))
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Outgoing for Taken<T> {
    fn encode(&self, encoder: &mut Encoder<'_>) -> postcard::Result<()> {
        crate::net::encoder::encode(&self.value, encoder)
    }

    fn refused(&self, error: &postcard::Error) -> OperationReply {
        malformed(
            self.core.name(),
            "cannot encode a value",
            &explain(error),
            || {
                self.core.poison(Side::Reader);
            },
        )
    }

    fn takes_back(&self) -> Option<Box<dyn TakesBack>> {
        self.core
            .survives_dead_peers()
            .then(|| Box::new(Arc::downgrade(&self.core)) as Box<dyn TakesBack>)
    }

    fn put_back(self: Box<Self>) {
        self.core.restore(self.value);
    }

    fn lost(&self, why: &dyn std::fmt::Display) {
        eprintln!(
            "csp: channel {}: a value taken for a reader in another OS process could not be \
             sent ({why}); the channel is poisoned",
            self.core.name()
        );
        self.core.poison(Side::Reader);
    }
}

/// Where a value read for a remote reader goes when the thread that delivered it sends it
/// on itself (see [`HomeEnd::read_answering`]).
pub(crate) type Answer = Arc<dyn Fn(HomeReply) + Send + Sync>;

fn deadline(wait: Wait) -> Deadline {
    match wait {
        Wait::Not => Deadline::Now,
        Wait::Forever => Deadline::Never,
        Wait::For(timeout) => Deadline::after(timeout),
    }
}

fn shortfall_reply(shortfall: Shortfall) -> OperationReply {
    match shortfall {
        Shortfall::NotReady => OperationReply::NotReady,
        Shortfall::TimedOut => OperationReply::TimedOut,
        Shortfall::Failed(error) => OperationReply::Failed(error),
    }
}

/// Bytes that cannot be what the channel carries: poison the channel, loudly.
fn malformed(
    name: &ChannelName,
    what: &str,
    error: &dyn std::fmt::Display,
    poison: impl FnOnce(),
) -> OperationReply {
    eprintln!("csp: channel {name}: {what}: {error}; the channel is poisoned");
    poison();
    OperationReply::Failed(crate::ChannelError::Poisoned {
        channel: name.clone(),
    })
}

/// The methods both kinds of home end share.
macro_rules! home_end_common {
    ($home:ident, $side:literal) => {
        fn fingerprint(&self) -> u64 {
            fingerprint::<T>($side)
        }

        fn type_name(&self) -> &'static str {
            std::any::type_name::<T>()
        }

        fn name(&self) -> &ChannelName {
            self.0.name()
        }

        fn duplicate(&self) -> Box<dyn HomeEnd> {
            Box::new($home::new(self.0.clone()))
        }

        fn poison(&self) {
            self.0.poison();
        }

        fn peer_died(&self) {
            if !self.0.core().is_some_and(|core| core.survives_dead_peers()) {
                self.0.poison();
            }
        }

        fn into_any(self: Box<Self>) -> Box<dyn Any> {
            self
        }
    };
}

pub(crate) struct HomeReader<T>(pub(crate) Reader<T>);
pub(crate) struct HomeWriter<T>(pub(crate) Writer<T>, Credit<T>);

impl<T> HomeReader<T> {
    pub(crate) fn new(reader: Reader<T>) -> Self {
        HomeReader(reader)
    }
}

impl<T> HomeWriter<T> {
    pub(crate) fn new(writer: Writer<T>) -> Self {
        let credit = Credit {
            core: writer.core().cloned(),
            granted: AtomicUsize::new(0),
            applied: AtomicU64::new(0),
        };
        HomeWriter(writer, credit)
    }
}

/// The buffer slots a home writer's remote end may fill without waiting for an answer (its
/// writes ahead), and how many writes ahead arrived; unused slots go back when it drops.
pub(crate) struct Credit<T> {
    core: Option<Arc<Core<T>>>,
    granted: AtomicUsize,
    applied: AtomicU64,
}

impl<T> Drop for Credit<T> {
    fn drop(&mut self) {
        if let Some(core) = &self.core {
            core.unreserve(*self.granted.get_mut());
        }
    }
}

/// The most slots one remote writer is given to write ahead into.
const MOST_CREDIT: usize = 64;

impl<T: Serialize + DeserializeOwned + Send + 'static> HomeEnd for HomeReader<T> {
    home_end_common!(HomeReader, "Reader");

    fn read_answering(&self, answer: Answer) -> Option<HomeReply> {
        let Some(core) = self.0.core() else {
            return Some(OperationReply::Unknown.into());
        };
        let hand_on = {
            let core = Arc::clone(core);
            Arc::new(move |value: T| answer(taken(value, &core)))
        };
        match self.0.read_or_hand_on(hand_on) {
            Ok(Some(value)) => Some(taken(value, core)),
            Ok(None) => None,
            Err(shortfall) => Some(shortfall_reply(shortfall).into()),
        }
    }

    fn perform(&self, operation: Operation) -> HomeReply {
        match operation {
            Operation::Read { wait } => match self.0.read_until(deadline(wait)) {
                Ok(value) => taken(value, self.0.core().expect("a home end is local")),
                Err(shortfall) => shortfall_reply(shortfall).into(),
            },
            Operation::Poison => {
                self.poison();
                OperationReply::Done.into()
            }
            _ => OperationReply::Unknown.into(),
        }
    }

    fn register(&self, selector: &Arc<Selector>, guard: usize, action: Action) -> OperationReply {
        let (Action::Read, Some(core)) = (action, self.0.core()) else {
            return OperationReply::Unknown;
        };
        OperationReply::Ready(core.register_reader(&mut core.lock(), selector, guard))
    }

    fn unregister(&self, selector: &Arc<Selector>, guard: usize) -> HomeReply {
        let Some(core) = self.0.core() else {
            return OperationReply::Unknown.into();
        };
        match core.unregister_reader(&mut core.lock(), selector, guard) {
            None => OperationReply::NotReady.into(),
            Some(value) => taken(value, core),
        }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> HomeEnd for HomeWriter<T> {
    home_end_common!(HomeWriter, "Writer");

    fn write_encoded(&self, bytes: &[u8], wait: Wait) -> OperationReply {
        match crate::net::encoder::decode::<T>(bytes) {
            Ok(value) => match self.0.write_until(value, deadline(wait)) {
                Ok(()) => OperationReply::Done,
                Err((_, shortfall)) => shortfall_reply(shortfall),
            },
            Err(error) => malformed(
                self.name(),
                "received a value it cannot decode",
                &error,
                || self.poison(),
            ),
        }
    }

    fn write_ahead(&self, bytes: &[u8]) -> bool {
        let (Some(core), Ok(value)) = (&self.1.core, crate::net::encoder::decode::<T>(bytes))
        else {
            return false;
        };
        let had = self
            .1
            .granted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |granted| {
                granted.checked_sub(1)
            });
        if had.is_err() {
            return false; // more writes ahead than slots granted: a broken peer
        }
        // A channel that failed meanwhile drops the value, as it would have dropped it
        // from its buffer.
        let _ = core.deposit_reserved(value);
        self.1.applied.fetch_add(1, Ordering::AcqRel);
        true
    }

    fn grant(&self) -> u32 {
        let Some(core) = &self.1.core else {
            return 0;
        };
        let most = (core.capacity() / 2).min(MOST_CREDIT);
        let held = self.1.granted.load(Ordering::Acquire);
        let granted = core.reserve(most.saturating_sub(held));
        self.1.granted.fetch_add(granted, Ordering::AcqRel);
        u32::try_from(granted).unwrap_or(0)
    }

    fn applied(&self) -> u64 {
        self.1.applied.load(Ordering::Acquire)
    }

    fn return_credit(&self, count: u32) {
        let count = count as usize;
        let returned = self
            .1
            .granted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |granted| {
                Some(granted.saturating_sub(count))
            })
            .map_or(0, |granted| granted.min(count));
        if let Some(core) = &self.1.core {
            core.unreserve(returned);
        }
    }

    fn perform(&self, operation: Operation) -> HomeReply {
        match operation {
            Operation::Write { value, wait } => self.write_encoded(&value, wait).into(),
            Operation::Poison => {
                self.poison();
                OperationReply::Done.into()
            }
            _ => OperationReply::Unknown.into(),
        }
    }

    fn register(&self, selector: &Arc<Selector>, guard: usize, action: Action) -> OperationReply {
        let (Action::Write { value }, Some(core)) = (action, self.0.core()) else {
            return OperationReply::Unknown;
        };
        match crate::net::encoder::decode::<T>(&value) {
            Ok(value) => OperationReply::Ready(core.register_writer(
                &mut core.lock(),
                selector,
                guard,
                value,
            )),
            Err(error) => malformed(
                self.name(),
                "received a value it cannot decode",
                &explain(&error),
                || self.poison(),
            ),
        }
    }

    fn unregister(&self, selector: &Arc<Selector>, guard: usize) -> HomeReply {
        let Some(core) = self.0.core() else {
            return OperationReply::Unknown.into();
        };
        let unsent = core.unregister_writer(&mut core.lock(), selector, guard);
        // The alternation kept its own value: this copy is only dropped (outside the lock).
        match unsent {
            Some(_) => OperationReply::NotReady.into(),
            None => OperationReply::Done.into(),
        }
    }
}
