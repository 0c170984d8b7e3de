//! Choice among guards: [`Alternation`] and its policies.
//!
//! An alternation waits until one of its enabled guards can proceed, carries out that guard's
//! communication exactly once, and says which guard it was. Guards are inputs (read from a
//! [`Reader`](crate::Reader)), outputs (write to a [`Writer`](crate::Writer)), timeouts and
//! skips, each with an optional boolean precondition.
//!
//! The usual way to write a choice is the `select!` macro of the
//! `csp` crate; [`Alternation::select`] is the builder form underneath it, handy when the set
//! of guards is built at run time.
//!
//! # Policies
//!
//! When several guards are ready at once:
//!
//! - [`Policy::Priority`]: the first ready guard in order wins (PyCSP's `PriSelect`, occam's
//!   `PRI ALT`).
//! - [`Policy::Fair`]: the search starts just after the guard chosen last time, so over many
//!   choices with every guard ready each is chosen equally often and none can starve. Keep one
//!   `Alternation` across the choices of a loop for this to hold.
//! - [`Policy::Arbitrary`]: the search starts at a random guard.
//!
//! # How it works
//!
//! The enable / wait / disable scheme of JCSP and C++CSP2: first every enabled guard is tried
//! in policy order; if none is ready, the alternation leaves an entry at each channel and
//! sleeps. A counterpart that arrives later completes its communication with the alternation
//! directly and wakes it, and only one counterpart can win that race. Alternations on both ends
//! of one channel work: the later of the two sees the earlier one waiting, withdraws, and takes
//! it in its next pass.
//!
//! # Examples
//!
//! A fair merge of two channels, re-using one alternation:
//!
//! ```
//! use csp_core::{Alternation, Guard, InputGuard, TimeoutGuard};
//! use std::time::Duration;
//!
//! let (wa, ra) = csp_core::buffered_channel::<&str>(4);
//! let (wb, rb) = csp_core::buffered_channel::<&str>(4);
//! for _ in 0..2 {
//!     wa.write("a").unwrap();
//!     wb.write("b").unwrap();
//! }
//! let mut alt = Alternation::fair();
//! let mut merged = String::new();
//! loop {
//!     let mut from_a = InputGuard::new(&ra);
//!     let mut from_b = InputGuard::new(&rb);
//!     let mut quiet = TimeoutGuard::new(Duration::from_millis(20));
//!     match alt.select(&mut [&mut from_a as &mut dyn Guard, &mut from_b, &mut quiet]).unwrap() {
//!         0 => merged.push_str(from_a.take().unwrap()),
//!         1 => merged.push_str(from_b.take().unwrap()),
//!         _ => break,
//!     }
//! }
//! assert_eq!(merged, "abab");
//! ```

use std::sync::Arc;
use std::time::Instant;

use crate::channel::core::Attempt;
use crate::deadlock::Waiting;
use crate::error::SelectError;
use crate::guard::{Guard, GuardKind, failure};
use crate::wait::{Selector, Woken};

/// How an [`Alternation`] chooses when several guards are ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The first ready guard in order.
    Priority,
    /// Rotating: the search starts after the guard chosen last.
    Fair,
    /// The search starts at a random guard.
    Arbitrary,
}

/// A reusable choice among guards, with a policy.
///
/// See the [module documentation](self) for the semantics and an example.
#[derive(Debug)]
pub struct Alternation {
    policy: Policy,
    next_start: usize,
    rng: Option<fastrand::Rng>,
}

impl Alternation {
    /// An alternation with the given policy.
    pub fn new(policy: Policy) -> Self {
        Alternation {
            policy,
            next_start: 0,
            rng: (policy == Policy::Arbitrary).then(fastrand::Rng::new),
        }
    }

    /// Priority choice: the first ready guard in order.
    pub fn priority() -> Self {
        Self::new(Policy::Priority)
    }

    /// Fair choice: no ready guard can starve across the choices of one alternation.
    pub fn fair() -> Self {
        Self::new(Policy::Fair)
    }

    /// Arbitrary choice: any ready guard.
    pub fn arbitrary() -> Self {
        Self::new(Policy::Arbitrary)
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    fn first_index(&mut self, guards: usize) -> usize {
        match (self.policy, &mut self.rng) {
            (Policy::Priority, _) => 0,
            (Policy::Fair, _) => self.next_start % guards,
            (Policy::Arbitrary, Some(rng)) => rng.usize(..guards),
            (Policy::Arbitrary, None) => 0,
        }
    }

    /// Waits until one enabled guard can proceed, carries out its communication, and returns
    /// its index in `guards`.
    ///
    /// After an [`InputGuard`](crate::InputGuard) is chosen, take the value from it; an
    /// [`OutputGuard`](crate::OutputGuard) not chosen still holds its value.
    ///
    /// # Errors
    ///
    /// [`SelectError::Channel`] if the policy reaches an enabled guard whose channel is
    /// poisoned or retired (nothing is communicated); [`SelectError::NoEnabledGuard`] if every
    /// precondition is false, since such a choice could never end.
    pub fn select(&mut self, guards: &mut [&mut dyn Guard]) -> Result<usize, SelectError> {
        crate::remote::flush_writes_ahead();
        let (order, timeout) = self.prepare(guards)?;
        let chosen = loop {
            if let Some(chosen) = Self::try_pass(guards, |k| order.at(k))? {
                break chosen;
            }
            match Self::wait_pass(guards, |k| order.at(k), timeout.and_then(|(at, _)| at)) {
                Woken::Selected(index) => break index,
                Woken::Recheck => continue,
                Woken::Deadlocked => return Err(Self::deadlocked(guards)),
                Woken::TimedOut => break Self::timed_out(timeout),
            }
        };
        self.next_start = chosen + 1;
        Ok(chosen)
    }

    /// The order this choice looks at the guards in, and the earliest enabled timeout (its
    /// deadline and index), which fires if nothing else does.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &mut self,
        guards: &[&mut (impl Guard + ?Sized)],
    ) -> Result<(Order, Option<(Option<Instant>, usize)>), SelectError> {
        let count = guards.len();
        if !guards.iter().any(|guard| guard.is_enabled()) {
            return Err(SelectError::NoEnabledGuard);
        }
        let order = Order {
            start: self.first_index(count),
            count,
        };
        let started = Instant::now();
        let timeout = (0..count)
            .map(|k| order.at(k))
            .filter(|&i| guards[i].is_enabled())
            .filter_map(|i| match guards[i].kind() {
                GuardKind::Timeout(after) => Some((started.checked_add(after), i)),
                _ => None,
            })
            .min_by_key(|&(at, _)| at.map_or((1, started), |at| (0, at)));
        Ok((order, timeout))
    }

    /// [`select`](Alternation::select) for a lightweight process: waits by awaiting, not by
    /// blocking its thread. Guards must be `Send` (they are, for `Send` values), so that the
    /// process can move between threads while it waits.
    ///
    /// Dropping the future withdraws the alternation: an input guard that had already been
    /// handed a value keeps it (take it from the guard), and an output guard whose value was
    /// not taken keeps that.
    ///
    /// # Errors
    ///
    /// As [`select`](Alternation::select).
    ///
    /// # Examples
    ///
    /// ```
    /// use csp_core::{Alternation, Guard, InputGuard, TimeoutGuard};
    /// use std::time::Duration;
    ///
    /// let (writer, reader) = csp_core::buffered_channel::<u8>(1);
    /// writer.write(3).unwrap();
    /// let mut input = InputGuard::new(&reader);
    /// let mut timeout = TimeoutGuard::new(Duration::from_secs(1));
    /// let chosen = csp_core::block_on(Alternation::fair().select_async(&mut [
    ///     &mut input as &mut (dyn Guard + Send),
    ///     &mut timeout,
    /// ]));
    /// assert_eq!((chosen.unwrap(), input.take()), (0, Some(3)));
    /// ```
    pub async fn select_async(
        &mut self,
        guards: &mut [&mut (dyn Guard + Send)],
    ) -> Result<usize, SelectError> {
        crate::remote::flush_writes_ahead();
        crate::executor::operating();
        let (order, timeout) = self.prepare(guards)?;
        let chosen = loop {
            let tried = {
                let mut plain: Vec<&mut dyn Guard> = guards
                    .iter_mut()
                    .map(|g| &mut **g as &mut dyn Guard)
                    .collect();
                Self::try_pass(&mut plain, |k| order.at(k))?
            };
            if let Some(chosen) = tried {
                break chosen;
            }
            let selector = Selector::for_task();
            let mut waiting = WaitingChoice {
                guards: &mut *guards,
                order,
                registered: 0,
                selector: Arc::clone(&selector),
                armed: true,
            };
            let (registered, ready) = {
                let mut plain = waiting.plain();
                Self::register_all(&mut plain, &|k| order.at(k), &selector)
            };
            waiting.registered = registered;
            let woken = if ready {
                Self::withdraw_ready(&selector)
            } else {
                let what = {
                    let plain = waiting.plain();
                    Self::waiting(&plain)
                };
                selector
                    .wait_async(timeout.and_then(|(at, _)| at), move || what.clone())
                    .await
            };
            waiting.withdraw();
            match woken {
                Woken::Selected(index) => break index,
                Woken::Recheck => continue,
                Woken::Deadlocked => {
                    let plain = waiting.plain();
                    return Err(Self::deadlocked(&plain));
                }
                Woken::TimedOut => break Self::timed_out(timeout),
            }
        };
        self.next_start = chosen + 1;
        Ok(chosen)
    }

    /// The guard chosen when the wait timed out: the earliest enabled timeout.
    fn timed_out<T>(timeout: Option<(T, usize)>) -> usize {
        timeout
            .map(|(_, index)| index)
            .expect("timed out with a timeout guard")
    }

    /// Tries every enabled guard once, in order; the first that completes is chosen.
    fn try_pass(
        guards: &mut [&mut dyn Guard],
        order: impl Fn(usize) -> usize,
    ) -> Result<Option<usize>, SelectError> {
        for index in (0..guards.len()).map(order) {
            let guard = &mut guards[index];
            if !guard.is_enabled() {
                continue;
            }
            match guard.try_now() {
                Attempt::Done(()) => return Ok(Some(index)),
                Attempt::NotReady => {}
                Attempt::Failed(error) => return Err(failure(error, index)),
            }
        }
        Ok(None)
    }

    /// Leaves an entry at every enabled communication guard, waits, and withdraws them.
    fn wait_pass(
        guards: &mut [&mut dyn Guard],
        order: impl Fn(usize) -> usize,
        deadline: Option<Instant>,
    ) -> Woken {
        let selector = Selector::current();
        let (registered, ready) = Self::register_all(guards, &order, &selector);
        let woken = if ready {
            Self::withdraw_ready(&selector)
        } else {
            selector.wait(deadline, || Self::waiting(guards))
        };
        Self::unregister_all(guards, &order, registered, &selector);
        woken
    }

    /// What a choice waits on, for the deadlock monitor's report. Guards whose channels
    /// live in another OS process count too: that OS process reports to the top of the
    /// network, which sees everyone.
    fn waiting(guards: &[&mut dyn Guard]) -> Option<Waiting> {
        Some(Waiting::Choice(
            guards
                .iter()
                .filter(|guard| guard.is_enabled())
                .filter_map(|guard| guard.channel())
                .collect(),
        ))
    }

    /// The error of a choice the deadlock monitor ended: its first enabled communication
    /// guard's channel, as poisoned.
    fn deadlocked(guards: &[&mut dyn Guard]) -> SelectError {
        let (guard, channel) = guards
            .iter()
            .enumerate()
            .filter(|(_, guard)| guard.is_enabled())
            .find_map(|(index, guard)| guard.channel().map(|(channel, _)| (index, channel)))
            .expect("a choice waits forever only on communication guards");
        SelectError::Channel {
            guard,
            error: crate::ChannelError::Poisoned { channel },
        }
    }

    /// Leaves an entry for every enabled communication guard, in order, until one finds its
    /// channel ready; returns how many guards were visited and whether one was ready.
    fn register_all(
        guards: &mut [&mut dyn Guard],
        order: &impl Fn(usize) -> usize,
        selector: &Arc<Selector>,
    ) -> (usize, bool) {
        let mut registered = 0;
        for index in (0..guards.len()).map(order) {
            let guard = &mut guards[index];
            registered += 1;
            if !guard.is_enabled() || guard.kind() != GuardKind::Communication {
                continue;
            }
            if guard.register(selector, index) {
                return (registered, true);
            }
        }
        (registered, false)
    }

    /// A counterpart is ready (or a channel failed): withdraw and try again, unless a
    /// counterpart chose us in the meantime.
    fn withdraw_ready(selector: &Selector) -> Woken {
        if selector.try_recheck() {
            Woken::Recheck
        } else {
            selector.settled()
        }
    }

    fn unregister_all(
        guards: &mut [&mut dyn Guard],
        order: &impl Fn(usize) -> usize,
        registered: usize,
        selector: &Arc<Selector>,
    ) {
        for index in (0..registered).map(order) {
            let guard = &mut guards[index];
            if guard.precondition() && guard.kind() == GuardKind::Communication {
                guard.unregister(selector, index);
            }
        }
    }
}

/// The order in which one choice looks at its guards: from `start`, round.
#[derive(Debug, Clone, Copy)]
struct Order {
    start: usize,
    count: usize,
}

impl Order {
    fn at(self, k: usize) -> usize {
        (self.start + k) % self.count
    }
}

/// A task's alternation while it waits: withdraws its entries if the future is dropped.
struct WaitingChoice<'a, 'g> {
    guards: &'a mut [&'g mut (dyn Guard + Send)],
    order: Order,
    registered: usize,
    selector: Arc<Selector>,
    armed: bool,
}

impl WaitingChoice<'_, '_> {
    fn plain(&mut self) -> Vec<&mut dyn Guard> {
        self.guards
            .iter_mut()
            .map(|guard| &mut **guard as &mut dyn Guard)
            .collect()
    }

    fn withdraw(&mut self) {
        if std::mem::replace(&mut self.armed, false) {
            let (order, registered, selector) =
                (self.order, self.registered, Arc::clone(&self.selector));
            let mut plain = self.plain();
            Alternation::unregister_all(&mut plain, &|k| order.at(k), registered, &selector);
        }
    }
}

impl Drop for WaitingChoice<'_, '_> {
    fn drop(&mut self) {
        if self.armed {
            // Dropped while waiting: stop any counterpart from choosing us, then withdraw.
            self.selector.abort();
            self.withdraw();
        }
    }
}
