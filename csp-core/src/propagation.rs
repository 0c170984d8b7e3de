//! Which channel ends a process holds, so that its ending can be passed on to them.
//!
//! As in PyCSP, a process that ends because of poison poisons every channel end among its
//! arguments, and one that panics does too, so that one poison (or one crash) shuts a whole
//! pipeline down. Ending because of retire needs no help: the process's ends are dropped when
//! its body returns, and dropping an end retires it.
//!
//! [`ChannelEnds`] finds the ends inside an argument: readers and writers themselves, and
//! everything that holds them in the standard containers (`Vec`, arrays, slices, tuples,
//! `Option`, `Box`, `VecDeque`, maps). Derive it for your own types with
//! `#[derive(ChannelEnds)]` from the `csp` crate. Ends sent inside messages are not the
//! process's arguments and are not touched.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::channel::core::Side;
use crate::channel::{ChannelControl, Reader, Writer};

/// A handle that can poison one channel from one side without counting as an end of it.
#[derive(Clone)]
struct EndHandle {
    control: Arc<dyn ChannelControl>,
    side: Side,
}

/// The channel ends a process holds, collected for poison propagation.
#[derive(Clone, Default)]
pub struct EndSet {
    ends: Vec<EndHandle>,
}

impl EndSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every end inside `value`.
    pub fn add(&mut self, value: &(impl ChannelEnds + ?Sized)) -> &mut Self {
        value.collect_ends(self);
        self
    }

    /// Adds every end of another set.
    pub fn extend(&mut self, other: EndSet) {
        self.ends.extend(other.ends);
    }

    /// How many ends the set holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the set holds no end.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Poisons every channel in the set, each from the side of the end that was collected.
    pub fn poison_all(&self) {
        for end in &self.ends {
            end.control.poison_from(end.side);
        }
    }

    /// The ends: each channel's control and the side held.
    pub(crate) fn handles(&self) -> impl Iterator<Item = (&Arc<dyn ChannelControl>, Side)> {
        self.ends.iter().map(|end| (&end.control, end.side))
    }

    fn hold_all(&self) {
        for end in &self.ends {
            end.control.hold();
        }
    }

    fn release_all(&self) {
        for end in &self.ends {
            end.control.release();
        }
    }

    fn push_remote(&mut self, remote: &crate::remote::RemoteEnd, side: Side) {
        self.ends.push(EndHandle {
            control: Arc::new(remote.control()),
            side,
        });
    }

    fn push<T: Send + 'static>(&mut self, core: &Arc<crate::channel::core::Core<T>>, side: Side) {
        self.ends.push(EndHandle {
            control: Arc::clone(core) as Arc<dyn ChannelControl>,
            side,
        });
    }
}

impl fmt::Debug for EndSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.ends
                    .iter()
                    .map(|end| (end.control.channel_name().clone(), end.side)),
            )
            .finish()
    }
}

/// A value that may hold channel ends; see the [module documentation](self).
///
/// # Examples
///
/// ```
/// use csp_core::{Channel, ChannelEnds, EndSet};
///
/// let channels: Vec<Channel<i32>> = (0..3).map(|_| Channel::new()).collect();
/// let outputs: Vec<_> = channels.iter().map(Channel::writer).collect();
/// let mut ends = EndSet::new();
/// (outputs, 7_u8).collect_ends(&mut ends);
/// assert_eq!(ends.len(), 3);
/// ends.poison_all();
/// assert!(channels[2].reader().read().unwrap_err().is_poisoned());
/// ```
pub trait ChannelEnds {
    /// Adds every channel end inside `self` to `ends`.
    fn collect_ends(&self, ends: &mut EndSet);
}

impl<T: Send + 'static> ChannelEnds for Reader<T> {
    fn collect_ends(&self, ends: &mut EndSet) {
        match (self.core(), self.as_remote()) {
            (Some(core), _) => ends.push(core, Side::Reader),
            (None, Some(remote)) => ends.push_remote(remote, Side::Reader),
            (None, None) => {}
        }
    }
}

impl<T: Send + 'static> ChannelEnds for Writer<T> {
    fn collect_ends(&self, ends: &mut EndSet) {
        match (self.core(), self.as_remote()) {
            (Some(core), _) => ends.push(core, Side::Writer),
            (None, Some(remote)) => ends.push_remote(remote, Side::Writer),
            (None, None) => {}
        }
    }
}

macro_rules! no_ends {
    ($($t:ty),* $(,)?) => {
        $(impl ChannelEnds for $t {
            fn collect_ends(&self, _: &mut EndSet) {}
        })*
    };
}
no_ends!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    str,
    std::time::Duration,
    std::time::Instant,
    std::path::PathBuf,
);

impl<E: ChannelEnds + ?Sized> ChannelEnds for &E {
    fn collect_ends(&self, ends: &mut EndSet) {
        (**self).collect_ends(ends);
    }
}

impl<E: ChannelEnds + ?Sized> ChannelEnds for Box<E> {
    fn collect_ends(&self, ends: &mut EndSet) {
        (**self).collect_ends(ends);
    }
}

impl<E: ChannelEnds> ChannelEnds for Option<E> {
    fn collect_ends(&self, ends: &mut EndSet) {
        if let Some(inner) = self {
            inner.collect_ends(ends);
        }
    }
}

impl<E: ChannelEnds> ChannelEnds for [E] {
    fn collect_ends(&self, ends: &mut EndSet) {
        self.iter().for_each(|inner| inner.collect_ends(ends));
    }
}

impl<E: ChannelEnds, const N: usize> ChannelEnds for [E; N] {
    fn collect_ends(&self, ends: &mut EndSet) {
        self.as_slice().collect_ends(ends);
    }
}

impl<E: ChannelEnds> ChannelEnds for Vec<E> {
    fn collect_ends(&self, ends: &mut EndSet) {
        self.as_slice().collect_ends(ends);
    }
}

impl<E: ChannelEnds> ChannelEnds for VecDeque<E> {
    fn collect_ends(&self, ends: &mut EndSet) {
        self.iter().for_each(|inner| inner.collect_ends(ends));
    }
}

impl<K, V: ChannelEnds, S> ChannelEnds for HashMap<K, V, S> {
    fn collect_ends(&self, ends: &mut EndSet) {
        self.values().for_each(|inner| inner.collect_ends(ends));
    }
}

impl<K, V: ChannelEnds> ChannelEnds for BTreeMap<K, V> {
    fn collect_ends(&self, ends: &mut EndSet) {
        self.values().for_each(|inner| inner.collect_ends(ends));
    }
}

macro_rules! tuple_ends {
    ($($name:ident)+) => {
        impl<$($name: ChannelEnds),+> ChannelEnds for ($($name,)+) {
            #[allow(non_snake_case)]
            fn collect_ends(&self, ends: &mut EndSet) {
                let ($($name,)+) = self;
                $($name.collect_ends(ends);)+
            }
        }
    };
}
tuple_ends!(A);
tuple_ends!(A B);
tuple_ends!(A B C);
tuple_ends!(A B C D);
tuple_ends!(A B C D E);
tuple_ends!(A B C D E F);
tuple_ends!(A B C D E F G);
tuple_ends!(A B C D E F G H);

/// Macro support: passes a process's ending on to its ends *before* they are dropped.
///
/// `#[process]` binds the arguments first and this guard after them, so the guard is dropped
/// first: when the body ends because of poison (or panics), the poison reaches every channel
/// before dropping the ends could retire them, and the other side sees the poison.
#[doc(hidden)]
#[derive(Debug)]
pub struct EndingGuard {
    ends: EndSet,
    propagate: bool,
    held: std::sync::atomic::AtomicBool,
}

impl EndingGuard {
    pub fn new(ends: EndSet, propagate: bool) -> Self {
        EndingGuard {
            ends,
            propagate,
            held: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Made first thing in the body: dropped as the body returns (by any path, panics
    /// included), after the body's own locals and before the arguments the body owns, it
    /// holds the process's channels so that dropping those arguments cannot retire them
    /// before [`finish`](EndingGuard::finish) has passed poison on.
    pub fn returning(&self) -> Returning<'_> {
        Returning(self)
    }

    /// Called with the body's ending when it returned normally.
    pub fn finish(&self, ending: crate::process::Ending) {
        if self.propagate && ending == crate::process::Ending::Poisoned {
            self.ends.poison_all();
        }
    }
}

impl Drop for EndingGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.ends.poison_all();
        }
        if self.held.swap(false, std::sync::atomic::Ordering::Relaxed) {
            self.ends.release_all();
        }
    }
}

/// See [`EndingGuard::returning`].
#[doc(hidden)]
pub struct Returning<'a>(&'a EndingGuard);

impl Drop for Returning<'_> {
    fn drop(&mut self) {
        if !self.0.held.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.0.ends.hold_all();
        }
    }
}

/// Macro support: finds the ends of an argument whose type may not implement
/// [`ChannelEnds`] (such arguments hold no ends as far as propagation is concerned).
#[doc(hidden)]
pub struct Probe<'a, T: ?Sized>(pub &'a T);

#[doc(hidden)]
pub trait ProbeEnds {
    fn probe_ends(&self, ends: &mut EndSet);
}

impl<T: ChannelEnds + ?Sized> ProbeEnds for Probe<'_, T> {
    fn probe_ends(&self, ends: &mut EndSet) {
        self.0.collect_ends(ends);
    }
}

#[doc(hidden)]
pub trait ProbeNoEnds {
    fn probe_ends(&self, ends: &mut EndSet);
}

impl<T: ?Sized> ProbeNoEnds for &Probe<'_, T> {
    fn probe_ends(&self, _: &mut EndSet) {}
}
