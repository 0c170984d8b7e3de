//! What a process does: a body and its arguments, kept apart so the arguments can travel.
//!
//! A process built by `#[process]` keeps its arguments as a value next to a body function, so
//! that placement in another OS process can encode the arguments and name the body, which
//! the child finds again in the [registry](crate::registry). A process built from a closure
//! can only run in this OS process.

use futures::future::BoxFuture;

/// The work a [`Process`](crate::Process) carries.
pub(crate) trait Work<R>: Send {
    /// Does the work here, on the calling thread.
    fn run(self: Box<Self>) -> R;
    /// The work as a future, for a lightweight process; `Err` gives back work that must run
    /// on a thread.
    fn into_task(self: Box<Self>) -> Result<BoxFuture<'static, R>, Box<dyn Work<R>>>;
    /// The registered name and fingerprint, and the encoded arguments, for running it in
    /// another OS process; or why that is impossible.
    fn placement(&self) -> Result<Placeable, String>;
}

/// What a child OS process needs to run a process.
pub(crate) struct Placeable {
    pub(crate) name: &'static str,
    pub(crate) fingerprint: u64,
    pub(crate) arguments: Vec<u8>,
    /// The channel ends among the arguments, lent out until the child has claimed them.
    pub(crate) lent: crate::transfer::TicketScope,
}

/// A closure: runs here only.
pub(crate) struct Closure<F>(pub(crate) F);

impl<R, F: FnOnce() -> R + Send + 'static> Work<R> for Closure<F> {
    fn run(self: Box<Self>) -> R {
        (self.0)()
    }

    fn into_task(self: Box<Self>) -> Result<BoxFuture<'static, R>, Box<dyn Work<R>>> {
        Err(self)
    }

    fn placement(&self) -> Result<Placeable, String> {
        Err("it was built from a closure; use #[process] to place it".to_string())
    }
}

/// A `#[process]` call: registered name, arguments and body.
pub(crate) struct Call<A, R> {
    pub(crate) name: &'static str,
    pub(crate) fingerprint: Option<u64>,
    pub(crate) arguments: A,
    pub(crate) body: fn(A) -> R,
    pub(crate) encode: fn(&A) -> Result<Vec<u8>, String>,
}

impl<A: Send + 'static, R: 'static> Work<R> for Call<A, R> {
    fn run(self: Box<Self>) -> R {
        (self.body)(self.arguments)
    }

    fn into_task(self: Box<Self>) -> Result<BoxFuture<'static, R>, Box<dyn Work<R>>> {
        Err(self)
    }

    fn placement(&self) -> Result<Placeable, String> {
        placement(self.name, self.fingerprint, self.encode, &self.arguments)
    }
}

/// A `#[process] async fn` call: a lightweight process, run as a task.
pub(crate) struct AsyncCall<A, R> {
    pub(crate) name: &'static str,
    pub(crate) fingerprint: Option<u64>,
    pub(crate) arguments: A,
    pub(crate) body: fn(A) -> BoxFuture<'static, R>,
    pub(crate) encode: fn(&A) -> Result<Vec<u8>, String>,
}

impl<A: Send + 'static, R: 'static> Work<R> for AsyncCall<A, R> {
    fn run(self: Box<Self>) -> R {
        // Run on a thread (`run`, or in a child OS process): drive the future here.
        futures::executor::block_on((self.body)(self.arguments))
    }

    fn into_task(self: Box<Self>) -> Result<BoxFuture<'static, R>, Box<dyn Work<R>>> {
        Ok((self.body)(self.arguments))
    }

    fn placement(&self) -> Result<Placeable, String> {
        placement(self.name, self.fingerprint, self.encode, &self.arguments)
    }
}

fn placement<A>(
    name: &'static str,
    fingerprint: Option<u64>,
    encode: fn(&A) -> Result<Vec<u8>, String>,
    arguments: &A,
) -> Result<Placeable, String> {
    let fingerprint =
        fingerprint.ok_or("it is generic, and only non-generic processes are registered")?;
    let (arguments, lent) = crate::transfer::TicketScope::collect(|| encode(arguments));
    Ok(Placeable {
        name,
        fingerprint,
        arguments: arguments?,
        lent,
    })
}
