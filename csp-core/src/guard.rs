//! The guards an [`Alternation`](crate::Alternation) chooses among.
//!
//! A guard is built for one choice (or re-used across a loop) and owns what its communication
//! needs: an [`InputGuard`] receives the value read, an [`OutputGuard`] holds the value to
//! write until it is taken. Each guard may carry a boolean precondition: a guard whose
//! precondition is false is never chosen.

// The sealed supertrait's methods mention crate-private types; outside code can neither name
// nor call them, which is the point of sealing.
#![allow(private_interfaces)]

use std::sync::Arc;
use std::time::Duration;

use crate::channel::core::{Attempt, wake};
use crate::channel::{Reader, Writer};
use crate::error::ChannelError;
use crate::net::message::SelectorAddress;
use crate::node::Hold;
use crate::wait::Selector;

pub(crate) mod sealed {
    use std::sync::Arc;

    use super::GuardKind;
    use crate::channel::core::Attempt;
    use crate::wait::Selector;

    /// The alternation's side of a guard; keeps [`Guard`](super::Guard) implementable only by
    /// this crate.
    pub trait Sealed {
        /// The precondition alone (an output guard is enabled only while it holds a value).
        fn precondition(&self) -> bool;
        fn kind(&self) -> GuardKind;
        /// Tries the communication without waiting.
        fn try_now(&mut self) -> Attempt<()>;
        /// Leaves an entry in the channel; true if the channel is ready already.
        fn register(&mut self, selector: &Arc<Selector>, index: usize) -> bool;
        /// Removes the entry, taking back an unsent value or a delivered one.
        fn unregister(&mut self, selector: &Arc<Selector>, index: usize);
        /// The channel a communication guard waits on, and whether it reads; for reports.
        fn channel(&self) -> Option<(crate::ChannelName, bool)> {
            None
        }
        /// Whether the guard's channel lives in another OS process.
        fn is_remote(&self) -> bool {
            false
        }
    }
}

/// What kind of waiting a guard does; decides how the alternation treats it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardKind {
    /// A channel communication.
    Communication,
    /// Fires once the given time has passed with nothing else chosen.
    Timeout(Duration),
    /// Always ready.
    Skip,
}

/// One alternative of an [`Alternation`](crate::Alternation).
///
/// Implemented by [`InputGuard`], [`OutputGuard`], [`TimeoutGuard`] and [`SkipGuard`]; the
/// trait is sealed, its methods are the alternation's business.
pub trait Guard: sealed::Sealed {
    /// Whether the guard takes part in the next choice (its precondition holds).
    fn is_enabled(&self) -> bool;
}

/// Reads from a channel if chosen.
///
/// # Examples
///
/// ```
/// use csp_core::{Alternation, InputGuard, Guard};
///
/// let (writer, reader) = csp_core::buffered_channel::<i32>(1);
/// writer.write(4).unwrap();
/// let mut input = InputGuard::new(&reader);
/// let chosen = Alternation::priority().select(&mut [&mut input as &mut dyn Guard]).unwrap();
/// assert_eq!((chosen, input.take()), (0, Some(4)));
/// ```
#[derive(Debug)]
pub struct InputGuard<'a, T> {
    reader: &'a Reader<T>,
    enabled: bool,
    value: Option<T>,
    /// Keeps this OS process reachable while an entry waits at a remote home.
    remote: Option<Hold>,
}

impl<'a, T> InputGuard<'a, T> {
    /// A guard reading from `reader`.
    pub fn new(reader: &'a Reader<T>) -> Self {
        InputGuard {
            reader,
            enabled: true,
            value: None,
            remote: None,
        }
    }

    /// Sets the precondition: the guard takes part only when `condition` is true.
    pub fn when(mut self, condition: bool) -> Self {
        self.enabled = condition;
        self
    }

    /// Changes the precondition of a guard kept across choices.
    pub fn set_enabled(&mut self, condition: bool) {
        self.enabled = condition;
    }

    /// Takes the value read when this guard was chosen.
    ///
    /// Until the value is taken the guard is not enabled, so a guard kept across choices
    /// never loses a value it read.
    pub fn take(&mut self) -> Option<T> {
        self.value.take()
    }
}

impl<T> Guard for InputGuard<'_, T> {
    fn is_enabled(&self) -> bool {
        // A value not yet taken keeps the guard out of the choice: it is never overwritten.
        self.enabled && self.value.is_none()
    }
}

impl<T> sealed::Sealed for InputGuard<'_, T> {
    fn precondition(&self) -> bool {
        self.enabled
    }

    fn channel(&self) -> Option<(crate::ChannelName, bool)> {
        Some((self.reader.name().clone(), true))
    }

    fn is_remote(&self) -> bool {
        self.reader.core().is_none()
    }

    fn kind(&self) -> GuardKind {
        GuardKind::Communication
    }

    fn try_now(&mut self) -> Attempt<()> {
        let Some(core) = self.reader.core() else {
            return match self.reader.remote_try() {
                Some(Attempt::Done(value)) => {
                    self.value = Some(value);
                    Attempt::Done(())
                }
                Some(Attempt::Failed(error)) => Attempt::Failed(error),
                Some(Attempt::NotReady) | None => Attempt::NotReady,
            };
        };
        let mut woken = None;
        let attempt = core.try_read(&mut core.lock(), &mut woken);
        wake(woken);
        match attempt {
            Attempt::Done(value) => {
                self.value = Some(value);
                Attempt::Done(())
            }
            Attempt::NotReady => Attempt::NotReady,
            Attempt::Failed(error) => Attempt::Failed(error),
        }
    }

    fn register(&mut self, selector: &Arc<Selector>, index: usize) -> bool {
        let Some(core) = self.reader.core() else {
            let Some((hold, address)) = reachable(selector) else {
                return true; // cannot be claimed from outside: look again, and fail there
            };
            self.remote = Some(hold);
            return self.reader.remote_register(address, index);
        };
        core.register_reader(&mut core.lock(), selector, index)
    }

    fn unregister(&mut self, selector: &Arc<Selector>, index: usize) {
        let Some(core) = self.reader.core() else {
            if self.remote.take().is_some() {
                let delivered = self.reader.remote_unregister(index);
                if delivered.is_some() {
                    self.value = delivered;
                }
            }
            return;
        };
        // `let`, not `if let`: the lock must be released before anything is assigned.
        let delivered = core.unregister_reader(&mut core.lock(), selector, index);
        if delivered.is_some() {
            self.value = delivered;
        }
    }
}

/// Writes a value to a channel if chosen; keeps the value otherwise.
///
/// # Examples
///
/// ```
/// use csp_core::{Alternation, OutputGuard, SkipGuard, Guard};
///
/// let (writer, _reader) = csp_core::channel::<String>();
/// let mut output = OutputGuard::new(&writer, "unsent".to_string());
/// let mut skip = SkipGuard::new();
/// let chosen = Alternation::priority().select(&mut [&mut output as &mut dyn Guard, &mut skip]).unwrap();
/// assert_eq!(chosen, 1); // no reader waited
/// assert_eq!(output.take().as_deref(), Some("unsent")); // the value is not lost
/// ```
#[derive(Debug)]
pub struct OutputGuard<'a, T> {
    writer: &'a Writer<T>,
    enabled: bool,
    value: Option<T>,
    /// Keeps this OS process reachable while an entry waits at a remote home.
    remote: Option<Hold>,
}

impl<'a, T> OutputGuard<'a, T> {
    /// A guard offering `value` on `writer`.
    pub fn new(writer: &'a Writer<T>, value: T) -> Self {
        OutputGuard {
            writer,
            enabled: true,
            value: Some(value),
            remote: None,
        }
    }

    /// Sets the precondition: the guard takes part only when `condition` is true.
    pub fn when(mut self, condition: bool) -> Self {
        self.enabled = condition;
        self
    }

    /// Changes the precondition of a guard kept across choices.
    pub fn set_enabled(&mut self, condition: bool) {
        self.enabled = condition;
    }

    /// Offers a new value (after the previous one was written).
    pub fn offer(&mut self, value: T) {
        self.value = Some(value);
    }

    /// Takes back the value if it was not written.
    pub fn take(&mut self) -> Option<T> {
        self.value.take()
    }
}

impl<T> Guard for OutputGuard<'_, T> {
    fn is_enabled(&self) -> bool {
        // A guard whose value was written already has nothing to offer.
        self.enabled && self.value.is_some()
    }
}

impl<T> sealed::Sealed for OutputGuard<'_, T> {
    fn precondition(&self) -> bool {
        self.enabled
    }

    fn channel(&self) -> Option<(crate::ChannelName, bool)> {
        Some((self.writer.name().clone(), false))
    }

    fn is_remote(&self) -> bool {
        self.writer.core().is_none()
    }

    fn kind(&self) -> GuardKind {
        GuardKind::Communication
    }

    fn try_now(&mut self) -> Attempt<()> {
        let Some(core) = self.writer.core() else {
            let Some(value) = self.value.as_ref() else {
                return Attempt::NotReady;
            };
            let attempt = self.writer.remote_try(value).unwrap_or(Attempt::NotReady);
            if matches!(attempt, Attempt::Done(())) {
                self.value = None;
            }
            return attempt;
        };
        let Some(value) = self.value.take() else {
            return Attempt::NotReady;
        };
        let mut woken = None;
        let result = core.try_write(&mut core.lock(), value, &mut woken);
        wake(woken);
        match result {
            Ok(()) => Attempt::Done(()),
            Err((value, failure)) => {
                self.value = Some(value);
                failure.map_or(Attempt::NotReady, Attempt::Failed)
            }
        }
    }

    fn register(&mut self, selector: &Arc<Selector>, index: usize) -> bool {
        let Some(core) = self.writer.core() else {
            let (Some((hold, address)), Some(value)) = (reachable(selector), self.value.as_ref())
            else {
                return true;
            };
            self.remote = Some(hold);
            return self.writer.remote_register(address, index, value);
        };
        let value = self
            .value
            .take()
            .expect("an enabled output guard holds a value");
        core.register_writer(&mut core.lock(), selector, index, value)
    }

    fn unregister(&mut self, selector: &Arc<Selector>, index: usize) {
        let Some(core) = self.writer.core() else {
            if self.remote.take().is_some() && self.writer.remote_unregister(index) {
                self.value = None; // written: the home's copy was taken
            }
            return;
        };
        let unsent = core.unregister_writer(&mut core.lock(), selector, index);
        if unsent.is_some() {
            self.value = unsent;
        }
    }
}

/// Fires when its time has passed and nothing else was chosen.
///
/// The time counts from the start of each `select`.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutGuard {
    after: Duration,
    enabled: bool,
}

impl TimeoutGuard {
    /// A guard firing `after` the choice starts.
    pub fn new(after: Duration) -> Self {
        TimeoutGuard {
            after,
            enabled: true,
        }
    }

    /// Sets the precondition.
    pub fn when(mut self, condition: bool) -> Self {
        self.enabled = condition;
        self
    }
}

impl Guard for TimeoutGuard {
    fn is_enabled(&self) -> bool {
        self.enabled
    }
}

impl sealed::Sealed for TimeoutGuard {
    fn precondition(&self) -> bool {
        self.enabled
    }

    fn kind(&self) -> GuardKind {
        GuardKind::Timeout(self.after)
    }

    fn try_now(&mut self) -> Attempt<()> {
        Attempt::NotReady
    }

    fn register(&mut self, _: &Arc<Selector>, _: usize) -> bool {
        false
    }

    fn unregister(&mut self, _: &Arc<Selector>, _: usize) {}
}

/// Always ready: under the priority policy, placed last, it makes a choice non-blocking.
#[derive(Debug, Clone, Copy)]
pub struct SkipGuard {
    enabled: bool,
}

impl SkipGuard {
    /// An enabled skip guard.
    pub fn new() -> Self {
        SkipGuard { enabled: true }
    }

    /// Sets the precondition.
    pub fn when(mut self, condition: bool) -> Self {
        self.enabled = condition;
        self
    }
}

impl Default for SkipGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Guard for SkipGuard {
    fn is_enabled(&self) -> bool {
        self.enabled
    }
}

impl sealed::Sealed for SkipGuard {
    fn precondition(&self) -> bool {
        self.enabled
    }

    fn kind(&self) -> GuardKind {
        GuardKind::Skip
    }

    fn try_now(&mut self) -> Attempt<()> {
        Attempt::Done(())
    }

    fn register(&mut self, _: &Arc<Selector>, _: usize) -> bool {
        false
    }

    fn unregister(&mut self, _: &Arc<Selector>, _: usize) {}
}

/// Lets the `select!` macro accept a reader or writer by value or by reference.
#[doc(hidden)]
pub trait EndRef<E> {
    fn end_ref(&self) -> &E;
}

impl<T> EndRef<Reader<T>> for Reader<T> {
    fn end_ref(&self) -> &Reader<T> {
        self
    }
}

impl<T> EndRef<Writer<T>> for Writer<T> {
    fn end_ref(&self) -> &Writer<T> {
        self
    }
}

impl<E, R: EndRef<E> + ?Sized> EndRef<E> for &R {
    fn end_ref(&self) -> &E {
        (**self).end_ref()
    }
}

impl<E, R: EndRef<E> + ?Sized> EndRef<E> for &mut R {
    fn end_ref(&self) -> &E {
        (**self).end_ref()
    }
}

/// Where other OS processes can claim `selector`: this process's node (kept listening by the
/// hold) and the selector's exported number.
fn reachable(selector: &Arc<Selector>) -> Option<(Hold, SelectorAddress)> {
    let hold = crate::node::node().hold().ok()?;
    let address = SelectorAddress {
        home: hold.address().clone(),
        id: selector.export(),
        round: selector.round(),
    };
    Some((hold, address))
}

pub(crate) fn failure(error: ChannelError, guard: usize) -> crate::error::SelectError {
    crate::error::SelectError::Channel { guard, error }
}
