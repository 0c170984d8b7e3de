//! Shared state, as a `multiprocessing.Manager` serves it: [`SharedValue`], [`SharedArray`]
//! and [`SharedList`] (one server type, a `Vec` or a value), [`SharedDict`] and
//! [`Namespace`].
//!
//! Every operation is carried out by the server, one at a time, so each is atomic. A compound
//! update ([`update`](Shared::update)) runs a function of the calling process on the state
//! while the server holds every other client's requests back: the state is leased to the
//! caller, who returns it changed. A client that dies while it holds the lease gives it back
//! unchanged.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::PatternError;
use super::service::{self, Client, ClientId, Departure, Replies, Serve, Wire};

/// Operations on one kind of shared state, carried out by its server.
pub trait Operate: Wire + Clone {
    /// An operation.
    type Operation: Wire;
    /// What an operation answers.
    type Outcome: Wire;
    /// Carries out `operation`.
    ///
    /// It runs inside the server's step, on the thread of whichever caller brought the
    /// request (see the `patterns` module): it should be quick and must not wait on a
    /// channel, a lock or a timer, or it holds up every client of the state meanwhile.
    fn operate(&mut self, operation: Self::Operation) -> Self::Outcome;
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "S: Operate")]
enum Request<S: Operate> {
    Operate(S::Operation),
    Lease,
    Return(Option<S>),
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "S: Operate")]
enum Reply<S: Operate> {
    Outcome(S::Outcome),
    Leased(S),
    Returned,
}

struct Server<S: Operate> {
    state: S,
    leased_to: Option<ClientId>,
    /// Requests held back while the state is leased.
    held: VecDeque<(ClientId, Request<S>)>,
}

impl<S: Operate> Server<S> {
    fn run(&mut self, client: ClientId, request: Request<S>, replies: &mut Replies<'_, Self>) {
        match request {
            Request::Operate(operation) => {
                let outcome = self.state.operate(operation);
                replies.send(client, Reply::Outcome(outcome));
            }
            Request::Lease => {
                self.leased_to = Some(client);
                replies.send(client, Reply::Leased(self.state.clone()));
            }
            Request::Return(state) => {
                if self.leased_to == Some(client) {
                    if let Some(state) = state {
                        self.state = state;
                    }
                    self.leased_to = None;
                }
                replies.send(client, Reply::Returned);
            }
        }
    }

    fn run_held(&mut self, replies: &mut Replies<'_, Self>) {
        while self.leased_to.is_none()
            && let Some((client, request)) = self.held.pop_front()
        {
            self.run(client, request, replies);
        }
    }
}

impl<S: Operate> Serve for Server<S> {
    type Request = Request<S>;
    type Reply = Reply<S>;

    fn handle(&mut self, client: ClientId, request: Request<S>, replies: &mut Replies<'_, Self>) {
        match self.leased_to {
            Some(holder) if holder != client => self.held.push_back((client, request)),
            _ => {
                self.run(client, request, replies);
                self.run_held(replies);
            }
        }
    }

    fn cancel(&mut self, _: ClientId, _: &mut Replies<'_, Self>) -> bool {
        false // no call here waits with a timeout
    }

    fn depart(&mut self, client: ClientId, _: Departure, replies: &mut Replies<'_, Self>) {
        self.held.retain(|(c, _)| *c != client);
        if self.leased_to == Some(client) {
            self.leased_to = None; // the state stays as it was before the lease
            self.run_held(replies);
        }
    }
}

/// A handle on shared state of kind `S`, served by a server process. Cloneable, and a serde
/// value, so it can be passed to processes in any placement.
///
/// Use it through its aliases ([`SharedValue`], [`SharedArray`], [`SharedList`],
/// [`SharedDict`], [`Namespace`]), whose operations are listed with them.
#[derive(Serialize, Deserialize)]
#[serde(bound = "S: Operate")]
pub struct Shared<S: Operate> {
    client: Client<Request<S>, Reply<S>>,
}

impl<S: Operate> Shared<S> {
    /// Serves `state` from a new server in this OS process, for as long as a
    /// handle lives.
    pub fn serve(state: S) -> Shared<S> {
        Self::start(state, None)
    }

    pub(crate) fn start(state: S, lifeline: Option<crate::Reader<()>>) -> Shared<S> {
        let server = Server {
            state,
            leased_to: None,
            held: VecDeque::new(),
        };
        Shared {
            client: service::start("shared state", server, lifeline),
        }
    }

    /// Another handle on the same state.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn try_clone(&self) -> Result<Shared<S>, PatternError> {
        Ok(Shared {
            client: self.client.try_clone()?,
        })
    }

    fn protocol() -> PatternError {
        PatternError::Protocol {
            service: "shared state".into(),
        }
    }

    /// Carries out one operation at the server.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server (its manager) is gone.
    pub fn operate(&self, operation: S::Operation) -> Result<S::Outcome, PatternError> {
        match self.client.call(Request::Operate(operation))? {
            Reply::Outcome(outcome) => Ok(outcome),
            _ => Err(Self::protocol()),
        }
    }

    /// A copy of the whole state.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn snapshot(&self) -> Result<S, PatternError> {
        self.update(|state| state.clone())
    }

    /// Applies `change` to the state atomically: no other client's operation runs between
    /// reading the state and storing the changed one. Returns what `change` returns.
    ///
    /// `change` runs in the calling process; if it panics, or the process dies, the state
    /// stays as it was.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn update<R>(&self, change: impl FnOnce(&mut S) -> R) -> Result<R, PatternError> {
        let Reply::Leased(mut state) = self.client.call(Request::Lease)? else {
            return Err(Self::protocol());
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| change(&mut state)));
        let returned = outcome.as_ref().ok().map(|_| state);
        match self.client.call(Request::Return(returned))? {
            Reply::Returned => {}
            _ => return Err(Self::protocol()),
        }
        match outcome {
            Ok(result) => Ok(result),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<S: Operate> Clone for Shared<S> {
    /// Another handle on the same state.
    ///
    /// # Panics
    ///
    /// If the server is gone; `try_clone` reports that as an error instead.
    fn clone(&self) -> Self {
        self.try_clone()
            .expect("cloning a handle whose server is gone")
    }
}

impl<S: Operate> fmt::Debug for Shared<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// A single shared value (`multiprocessing.Value`, `Manager().Value`).
///
/// # Examples
///
/// ```
/// use csp_core::patterns::SharedValue;
///
/// let counter = SharedValue::new(0u64);
/// let other = counter.clone();
/// std::thread::spawn(move || other.update(|cell| cell.0 += 5).unwrap()).join().unwrap();
/// assert_eq!(counter.get().unwrap(), 5);
/// counter.set(7).unwrap();
/// assert_eq!(counter.get().unwrap(), 7);
/// ```
pub type SharedValue<T> = Shared<Cell<T>>;

/// The state behind a [`SharedValue`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell<T>(pub T);

/// An operation on a [`Cell`].
#[derive(Serialize, Deserialize)]
pub enum CellOperation<T> {
    /// Read it.
    Get,
    /// Replace it, answering the old value.
    Set(T),
}

impl<T: Wire + Clone> Operate for Cell<T> {
    type Operation = CellOperation<T>;
    type Outcome = T;
    fn operate(&mut self, operation: CellOperation<T>) -> T {
        match operation {
            CellOperation::Get => self.0.clone(),
            CellOperation::Set(value) => std::mem::replace(&mut self.0, value),
        }
    }
}

impl<T: Wire + Clone> Shared<Cell<T>> {
    /// A shared value, served for as long as a handle lives.
    pub fn new(value: T) -> Self {
        Shared::serve(Cell(value))
    }

    /// The value.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone (for every method).
    pub fn get(&self) -> Result<T, PatternError> {
        self.operate(CellOperation::Get)
    }

    /// Replaces the value; returns the old one.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn set(&self, value: T) -> Result<T, PatternError> {
        self.operate(CellOperation::Set(value))
    }
}

/// A shared list (`Manager().list()`); also `multiprocessing.Array`, as [`SharedArray`].
///
/// # Examples
///
/// ```
/// use csp_core::patterns::SharedList;
///
/// let records = SharedList::new(vec!["a".to_string()]);
/// records.push("b".to_string()).unwrap();
/// assert_eq!(records.len().unwrap(), 2);
/// assert_eq!(records.get(1).unwrap(), "b");
/// assert_eq!(records.snapshot().unwrap(), ["a", "b"]);
/// ```
pub type SharedList<T> = Shared<Vec<T>>;

/// A shared array (`multiprocessing.Array`): a [`SharedList`] whose length you keep.
pub type SharedArray<T> = Shared<Vec<T>>;

/// An operation on a shared list.
#[derive(Serialize, Deserialize)]
pub enum ListOperation<T> {
    /// The item at an index.
    Get(usize),
    /// Replace the item at an index.
    Set(usize, T),
    /// Append an item.
    Push(T),
    /// Remove and answer the last item.
    Pop,
    /// Insert at an index.
    Insert(usize, T),
    /// Remove and answer the item at an index.
    Remove(usize),
    /// How many items.
    Len,
}

/// What a list operation answers.
#[derive(Serialize, Deserialize)]
pub enum ListOutcome<T> {
    /// An item, or none.
    Item(Option<T>),
    /// A length.
    Len(usize),
    /// Done.
    Done,
    /// The index was past the end (the length is given).
    OutOfRange(usize),
}

impl<T: Wire + Clone> Operate for Vec<T> {
    type Operation = ListOperation<T>;
    type Outcome = ListOutcome<T>;
    fn operate(&mut self, operation: ListOperation<T>) -> ListOutcome<T> {
        let length = self.len();
        match operation {
            ListOperation::Get(index) if index < length => {
                ListOutcome::Item(Some(self[index].clone()))
            }
            ListOperation::Set(index, item) if index < length => {
                ListOutcome::Item(Some(std::mem::replace(&mut self[index], item)))
            }
            ListOperation::Remove(index) if index < length => {
                ListOutcome::Item(Some(self.remove(index)))
            }
            ListOperation::Insert(index, item) if index <= length => {
                self.insert(index, item);
                ListOutcome::Done
            }
            ListOperation::Get(_)
            | ListOperation::Set(..)
            | ListOperation::Remove(_)
            | ListOperation::Insert(..) => ListOutcome::OutOfRange(length),
            ListOperation::Push(item) => {
                self.push(item);
                ListOutcome::Done
            }
            ListOperation::Pop => ListOutcome::Item(self.pop()),
            ListOperation::Len => ListOutcome::Len(length),
        }
    }
}

impl<T: Wire + Clone> Shared<Vec<T>> {
    /// A shared list holding `items`, served for as long as a handle lives.
    pub fn new(items: Vec<T>) -> Self {
        Shared::serve(items)
    }

    fn item(&self, operation: ListOperation<T>, index: usize) -> Result<T, PatternError> {
        match self.operate(operation)? {
            ListOutcome::Item(Some(item)) => Ok(item),
            ListOutcome::OutOfRange(length) => Err(PatternError::OutOfRange { index, length }),
            _ => Err(Self::protocol()),
        }
    }

    /// The item at `index`.
    ///
    /// # Errors
    ///
    /// [`PatternError::OutOfRange`] past the end; [`PatternError::Gone`] if the server is
    /// gone (for every method).
    pub fn get(&self, index: usize) -> Result<T, PatternError> {
        self.item(ListOperation::Get(index), index)
    }

    /// Replaces the item at `index`; returns the old one.
    ///
    /// # Errors
    ///
    /// [`PatternError::OutOfRange`] past the end.
    pub fn set(&self, index: usize, item: T) -> Result<T, PatternError> {
        self.item(ListOperation::Set(index, item), index)
    }

    /// Removes and returns the item at `index`.
    ///
    /// # Errors
    ///
    /// [`PatternError::OutOfRange`] past the end.
    pub fn remove(&self, index: usize) -> Result<T, PatternError> {
        self.item(ListOperation::Remove(index), index)
    }

    /// Inserts `item` at `index` (at most the length).
    ///
    /// # Errors
    ///
    /// [`PatternError::OutOfRange`] past the end.
    pub fn insert(&self, index: usize, item: T) -> Result<(), PatternError> {
        match self.operate(ListOperation::Insert(index, item))? {
            ListOutcome::Done => Ok(()),
            ListOutcome::OutOfRange(length) => Err(PatternError::OutOfRange { index, length }),
            _ => Err(Self::protocol()),
        }
    }

    /// Appends `item` (`append`).
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn push(&self, item: T) -> Result<(), PatternError> {
        self.operate(ListOperation::Push(item)).map(drop)
    }

    /// Removes and returns the last item, if any.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn pop(&self) -> Result<Option<T>, PatternError> {
        match self.operate(ListOperation::Pop)? {
            ListOutcome::Item(item) => Ok(item),
            _ => Err(Self::protocol()),
        }
    }

    /// How many items.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn len(&self) -> Result<usize, PatternError> {
        match self.operate(ListOperation::Len)? {
            ListOutcome::Len(length) => Ok(length),
            _ => Err(Self::protocol()),
        }
    }

    /// Whether the list is empty.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn is_empty(&self) -> Result<bool, PatternError> {
        self.len().map(|length| length == 0)
    }
}

/// A shared dictionary (`Manager().dict()`), ordered by key.
///
/// # Examples
///
/// ```
/// use csp_core::patterns::SharedDict;
///
/// let squares = SharedDict::new();
/// for n in 0..4u32 {
///     squares.insert(n, n * n).unwrap();
/// }
/// assert_eq!(squares.get(&3).unwrap(), Some(9));
/// assert_eq!(squares.len().unwrap(), 4);
/// ```
pub type SharedDict<K, V> = Shared<BTreeMap<K, V>>;

/// A namespace of named attributes (`Manager().Namespace()`), all of one type `V` (use an
/// enum for several).
///
/// # Examples
///
/// ```
/// use csp_core::patterns::Namespace;
///
/// let ns = Namespace::new();
/// ns.insert("x".to_string(), 1).unwrap();
/// ns.update(|attributes| *attributes.get_mut("x").unwrap() += 5).unwrap();
/// assert_eq!(ns.attribute("x").unwrap(), 6);
/// assert!(ns.attribute("y").is_err());
/// ```
pub type Namespace<V> = Shared<BTreeMap<String, V>>;

/// An operation on a shared dictionary.
#[derive(Serialize, Deserialize)]
pub enum DictOperation<K, V> {
    /// The value under a key.
    Get(K),
    /// Insert, answering the old value.
    Insert(K, V),
    /// Remove, answering the old value.
    Remove(K),
    /// How many entries.
    Len,
}

/// What a dictionary operation answers.
#[derive(Serialize, Deserialize)]
pub enum DictOutcome<V> {
    /// A value, or none.
    Value(Option<V>),
    /// A length.
    Len(usize),
}

impl<K: Wire + Ord + Clone, V: Wire + Clone> Operate for BTreeMap<K, V> {
    type Operation = DictOperation<K, V>;
    type Outcome = DictOutcome<V>;
    fn operate(&mut self, operation: DictOperation<K, V>) -> DictOutcome<V> {
        match operation {
            DictOperation::Get(key) => DictOutcome::Value(self.get(&key).cloned()),
            DictOperation::Insert(key, value) => DictOutcome::Value(self.insert(key, value)),
            DictOperation::Remove(key) => DictOutcome::Value(self.remove(&key)),
            DictOperation::Len => DictOutcome::Len(self.len()),
        }
    }
}

impl<K: Wire + Ord + Clone, V: Wire + Clone> Shared<BTreeMap<K, V>> {
    /// An empty shared dictionary, served for as long as a handle lives.
    pub fn new() -> Self {
        Shared::serve(BTreeMap::new())
    }

    fn value(&self, operation: DictOperation<K, V>) -> Result<Option<V>, PatternError> {
        match self.operate(operation)? {
            DictOutcome::Value(value) => Ok(value),
            DictOutcome::Len(_) => Err(Self::protocol()),
        }
    }

    /// The value under `key`, if any.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone (for every method).
    pub fn get(&self, key: &K) -> Result<Option<V>, PatternError> {
        self.value(DictOperation::Get(key.clone()))
    }

    /// Inserts `value` under `key`; returns the old value.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, PatternError> {
        self.value(DictOperation::Insert(key, value))
    }

    /// Removes `key`; returns its value.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn remove(&self, key: &K) -> Result<Option<V>, PatternError> {
        self.value(DictOperation::Remove(key.clone()))
    }

    /// How many entries.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn len(&self) -> Result<usize, PatternError> {
        match self.operate(DictOperation::Len)? {
            DictOutcome::Len(length) => Ok(length),
            DictOutcome::Value(_) => Err(Self::protocol()),
        }
    }

    /// Whether the dictionary is empty.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn is_empty(&self) -> Result<bool, PatternError> {
        self.len().map(|length| length == 0)
    }
}

impl<V: Wire + Clone> Shared<BTreeMap<String, V>> {
    /// The attribute `name` of a [`Namespace`].
    ///
    /// # Errors
    ///
    /// [`PatternError::NoSuchKey`] if there is none; [`PatternError::Gone`] if the server is
    /// gone.
    pub fn attribute(&self, name: &str) -> Result<V, PatternError> {
        self.get(&name.to_string())?
            .ok_or_else(|| PatternError::NoSuchKey(name.to_string()))
    }
}

impl<K: Wire + Ord + Clone, V: Wire + Clone> Default for Shared<BTreeMap<K, V>> {
    fn default() -> Self {
        Self::new()
    }
}
