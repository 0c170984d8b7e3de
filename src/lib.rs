//! # csp: CSP process networks for Rust
//!
//! Write programs as networks of processes that talk only over channels, in the style of
//! [PyCSP](https://github.com/runefriborg/pycsp), occam and JCSP.
//!
//! - **Processes.** [`#[process]`](macro@process) turns a function into a process
//!   constructor; nothing runs until the process is composed with [`Parallel`] (all at once,
//!   results in order), [`Sequence`] (one after another) or [`Spawn`] (in the background).
//!   Compositions nest.
//! - **Channels.** Typed, any-to-any [`Channel`]s, rendezvous by default (a write returns only
//!   when a reader has taken the value), optionally buffered, shut down cleanly by poison and
//!   retire.
//! - **Alternation.** [`select!`] chooses among input, output, timeout and skip guards with
//!   boolean preconditions, under priority, fair or arbitrary [`Policy`].
//!
//! # A first network
//!
//! ```
//! use csp::prelude::*;
//!
//! #[process]
//! fn producer(out: Writer<u64>, count: u64) -> Result<(), csp::Error> {
//!     for n in 1..=count {
//!         out.write(n)?;
//!     }
//!     Ok(()) // `out` is dropped here: the writing side retires
//! }
//!
//! #[process]
//! fn consumer(input: Reader<u64>) -> u64 {
//!     input.iter().sum() // reads until the channel retires
//! }
//!
//! let channel = Channel::new();
//! let (sent, total) = parallel![producer(channel.writer(), 10), consumer(channel.reader())]
//!     .run()
//!     .unwrap();
//! assert!(sent.is_ok());
//! assert_eq!(total, 55);
//! ```
//!
//! # Poison shuts a pipeline down
//!
//! A process that ends because a channel was poisoned (its body returned the poison error,
//! usually through `?`) poisons every channel end among its arguments, so one poison travels
//! through a whole network:
//!
//! ```
//! use csp::prelude::*;
//!
//! #[process]
//! fn relay(input: Reader<i32>, output: Writer<i32>) -> Result<(), csp::Error> {
//!     loop {
//!         output.write(input.read()? + 1)?;
//!     }
//! }
//!
//! #[process]
//! fn source(output: Writer<i32>) -> Result<(), csp::Error> {
//!     output.write(1)?;
//!     output.poison(); // done: shut everything down
//!     Ok(())
//! }
//!
//! #[process]
//! fn sink(input: Reader<i32>) -> Vec<i32> {
//!     input.iter().collect() // stops at the poison
//! }
//!
//! let (a, b) = (Channel::new(), Channel::new());
//! let (_, relayed, seen) = parallel![
//!     source(a.writer()),
//!     relay(a.reader(), b.writer()),
//!     sink(b.reader()),
//! ]
//! .run()
//! .unwrap();
//! assert!(relayed.unwrap_err().channel_error().unwrap().is_poisoned());
//! assert_eq!(seen, [2]);
//! ```
//!
//! # Choice
//!
//! ```
//! use csp::prelude::*;
//! use std::time::Duration;
//!
//! let (urgent, normal) = (Channel::<&str>::buffered(1), Channel::<&str>::buffered(1));
//! normal.writer().write("normal").unwrap();
//! urgent.writer().write("urgent").unwrap();
//! let (urgent_in, normal_in) = (urgent.reader(), normal.reader());
//! let got = select! {
//!     message = read(urgent_in) => message,   // priority: first ready guard wins
//!     message = read(normal_in) => message,
//!     timeout(Duration::from_millis(10)) => "nothing",
//! }
//! .unwrap();
//! assert_eq!(got, "urgent");
//! ```
//!
//! # Placement in OS processes
//!
//! Whoever composes a network chooses where each process runs: `.os()` runs a `#[process]`
//! in a child OS process (this executable started again), the function unchanged. `main`
//! needs one line of set-up, `#[csp::main]` (or `csp::init()` as its first statement); a test
//! file that places processes needs `csp::child_entry!();`.
//!
//! ```no_run
//! use csp::prelude::*;
//!
//! #[process]
//! fn square(n: u64) -> u64 {
//!     n * n
//! }
//!
//! #[process]
//! fn produce(out: Writer<u64>, count: u64) -> Result<(), csp::Error> {
//!     for n in 1..=count {
//!         out.write(n)?; // from a child OS process, over a channel homed in the parent
//!     }
//!     Ok(())
//! }
//!
//! #[csp::main]
//! fn main() -> Result<(), csp::RunError> {
//!     let (a, b) = parallel![square(3).os()?, square(4)].run()?;
//!     assert_eq!(a + b, 25); // 9 computed in a child OS process, 16 on a thread
//!
//!     let numbers = Channel::new();
//!     let reader = numbers.reader();
//!     let (sent, sum) = parallel![
//!         produce(numbers.writer(), 10).os()?,
//!         Process::new("sum", move || reader.iter().sum::<u64>()),
//!     ]
//!     .run()?;
//!     assert!(sent.is_ok());
//!     assert_eq!(sum, 55);
//!     Ok(())
//! }
//! ```
//!
//! # Mistakes caught at compile time
//!
//! `#[process]` takes free functions only, not methods:
//!
//! ```compile_fail
//! struct Server;
//! impl Server {
//!     #[csp::process]
//!     fn serve(&self) {}
//! }
//! ```
//!
//! A process's arguments must be `Send + 'static`, since it may run on another thread:
//!
//! ```compile_fail
//! #[csp::process]
//! fn borrows(text: &str) -> usize { text.len() }
//! let text = String::from("local");
//! borrows(&text).run().unwrap();
//! ```
//!
//! `#[process(placeable)]` checks at compile time that a process can run in another OS
//! process (without it, `.os()` refuses such a process when called):
//!
//! ```compile_fail
//! #[csp::process(placeable)]
//! fn timed(started: std::time::Instant) -> u64 {
//!     started.elapsed().as_secs() // an Instant cannot cross OS processes
//! }
//! ```
//!
//! `select!` knows four guards, and only `read` binds a value:
//!
//! ```compile_fail
//! let (w, r) = csp::channel::<u8>();
//! let _ = csp::select! { v = write(w, 1) => v };
//! ```
//!
//! See the README for a tutorial and a table for people coming from PyCSP.

pub use csp_core::*;

/// The README's code blocks, compiled and run as doc tests so that they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
pub use csp_macros::{ChannelEnds, main, process, select, select_async};

/// Everything a process network usually needs, in one `use csp::prelude::*;`.
pub mod prelude {
    pub use csp_core::{
        Alternation, Channel, ChannelError, Guard, InputGuard, OutputGuard, Parallel, Policy,
        Process, Reader, Sequence, SkipGuard, Spawn, TimeoutGuard, Writer, parallel, sequence,
    };
    pub use csp_macros::{ChannelEnds, process, select, select_async};
}
