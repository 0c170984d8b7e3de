//! The fourth seed's event program: one OS process waits for an event, another waits with a
//! timeout; the parent sets the event after both have started and the timeout has passed.
//!
//! ```python
//! def wait_for_event(e):
//!     print('wait_for_event: starting'); e.wait()
//!     print('wait_for_event: e.is_set()->', e.is_set())
//! def wait_for_event_timeout(e, t):
//!     print('wait_for_event_timeout: starting'); e.wait(t)
//!     print('wait_for_event_timeout: e.is_set()->', e.is_set())
//! w1 = Process(name='block', ...); w2 = Process(name='nonblock', args=(e, 2))
//! print('main: waiting before calling Event.set()'); time.sleep(3); e.set()
//! print('main: event is set')
//! ```
//!
//! The times are scaled down: the timeout is 0.2 s and the parent sets the event after 0.7 s
//! (the seed's 2 s and 3 s). Each child says it started through a second event, so that the
//! parent's pause is counted from then and the output keeps the seed's order except where
//! its processes race (the two "starting" lines, and the last two lines).
//!
//! Run: `cargo run --example mp_event`.

use std::time::Duration;

use csp::patterns::Event;
use csp::prelude::*;

#[process]
fn wait_for_event(e: Event, started: Event) -> Result<(), String> {
    println!("wait_for_event: starting");
    started.set().map_err(|error| error.to_string())?;
    e.wait().map_err(|error| error.to_string())?;
    let set = e.is_set().map_err(|error| error.to_string())?;
    println!(
        "wait_for_event: e.is_set()-> {}",
        if set { "True" } else { "False" }
    );
    Ok(())
}

#[process]
fn wait_for_event_timeout(e: Event, t: Duration, started: Event) -> Result<(), String> {
    println!("wait_for_event_timeout: starting");
    started.set().map_err(|error| error.to_string())?;
    e.wait_timeout(t).map_err(|error| error.to_string())?;
    let set = e.is_set().map_err(|error| error.to_string())?;
    println!(
        "wait_for_event_timeout: e.is_set()-> {}",
        if set { "True" } else { "False" }
    );
    Ok(())
}

#[csp::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let e = Event::new();
    let (w1_started, w2_started) = (Event::new(), Event::new());
    println!("main: waiting before calling Event.set()");
    let w1 = wait_for_event(e.clone(), w1_started.clone()).os()?.spawn();
    let w2 = wait_for_event_timeout(e.clone(), Duration::from_millis(200), w2_started.clone())
        .os()?
        .spawn();
    w1_started.wait()?;
    w2_started.wait()?;
    std::thread::sleep(Duration::from_millis(700));
    e.set()?;
    println!("main: event is set");
    w1.join()??;
    w2.join()??;
    Ok(())
}
