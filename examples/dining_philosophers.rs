//! The dining philosophers, with a butler, in the style of JCSP's "college".
//!
//! Five philosophers share five forks. Each fork is a process that alternates between its
//! two neighbours' pick-up channels (fair choice, so neither neighbour starves) and then
//! waits for the same one to put it down. The butler is a process that lets a philosopher sit
//! only while fewer than four are seated: its alternation guards the `sit` channel with that
//! precondition, so the ring can never deadlock.
//!
//! Everything stops by retirement: a philosopher that has eaten its meals drops its ends;
//! when the last one has, the forks' and the butler's channels are retired and they end too.
//!
//! Run: `cargo run --example dining_philosophers [MEALS]`.

use std::time::Duration;

use csp::SelectError;
#[path = "common/dot.rs"]
mod dot;

use csp::prelude::*;

const PHILOSOPHERS: usize = 5;

/// One end of a fork, as a philosopher holds it.
struct ForkEnd {
    up: Writer<()>,
    down: Writer<()>,
}

#[derive(ChannelEnds)]
struct ForkSide {
    up: Reader<()>,
    down: Reader<()>,
}

#[process]
fn philosopher(
    id: usize,
    meals: u32,
    sit: Writer<usize>,
    stand: Writer<usize>,
    left: (Writer<()>, Writer<()>),
    right: (Writer<()>, Writer<()>),
) -> Result<u32, csp::Error> {
    let (left, right) = (
        ForkEnd {
            up: left.0,
            down: left.1,
        },
        ForkEnd {
            up: right.0,
            down: right.1,
        },
    );
    for _ in 0..meals {
        std::thread::sleep(Duration::from_micros(200 * id as u64)); // think
        sit.write(id)?;
        left.up.write(())?;
        right.up.write(())?;
        std::thread::sleep(Duration::from_micros(300)); // eat
        left.down.write(())?;
        right.down.write(())?;
        stand.write(id)?;
    }
    Ok(meals)
}

/// A fork: picked up by one neighbour at a time, put down by the same one.
#[process]
fn fork(left: ForkSide, right: ForkSide) -> Result<u32, csp::Error> {
    let mut alt = Alternation::fair();
    let mut open = [true, true];
    let mut uses = 0;
    while open.iter().any(|&o| o) {
        let side = select! {
            &mut alt;
            () = read(left.up), if open[0] => 0,
            () = read(right.up), if open[1] => 1,
        };
        match side {
            Ok(0) => left.down.read()?,
            Ok(_) => right.down.read()?,
            Err(SelectError::Channel { guard, error }) if error.is_retired() => {
                open[guard] = false;
                continue;
            }
            Err(error) => return Err(error.into()),
        }
        uses += 1;
    }
    Ok(uses)
}

/// The butler: at most `PHILOSOPHERS - 1` seated at once. Returns the most ever seated.
#[process]
fn butler(sit: Reader<usize>, stand: Reader<usize>) -> Result<usize, csp::Error> {
    let mut seated = 0;
    let mut most = 0;
    let mut open = [true, true];
    while open.iter().any(|&o| o) {
        let event = select! {
            _ = read(sit), if open[0] && seated < PHILOSOPHERS - 1 => 1_isize,
            _ = read(stand), if open[1] => -1,
        };
        match event {
            Ok(change) => {
                seated = seated
                    .checked_add_signed(change)
                    .expect("stand only after sit");
                most = most.max(seated);
            }
            Err(SelectError::Channel { guard, error }) if error.is_retired() => open[guard] = false,
            Err(error) => return Err(error.into()),
        }
    }
    Ok(most)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `--dot FILE`: write a picture of the network (Graphviz DOT) once it has run.
    let (dot, args) = dot::dot_option();
    let meals: u32 = args.first().map_or(Ok(5), |s| s.parse())?;
    let (sit, stand) = (Channel::named("sit"), Channel::named("stand"));
    // Fork `f` lies between philosopher `f` (its left fork) and philosopher `f - 1` (its right).
    let channels = |kind: &str| -> Vec<Channel<()>> {
        (0..PHILOSOPHERS)
            .map(|f| Channel::named(format!("fork{f}.{kind}")))
            .collect()
    };
    let (left_up, left_down) = (channels("left-up"), channels("left-down"));
    let (right_up, right_down) = (channels("right-up"), channels("right-down"));
    let philosophers = Parallel::of((0..PHILOSOPHERS).map(|p| {
        let r = (p + 1) % PHILOSOPHERS;
        philosopher(
            p,
            meals,
            sit.writer(),
            stand.writer(),
            (left_up[p].writer(), left_down[p].writer()),
            (right_up[r].writer(), right_down[r].writer()),
        )
        .named(format!("philosopher {p}"))
    }));
    let forks = Parallel::of((0..PHILOSOPHERS).map(|f| {
        fork(
            ForkSide {
                up: left_up[f].reader(),
                down: left_down[f].reader(),
            },
            ForkSide {
                up: right_up[f].reader(),
                down: right_down[f].reader(),
            },
        )
        .named(format!("fork {f}"))
    }));
    let network = parallel![philosophers, forks, butler(sit.reader(), stand.reader())];
    let picture = network.picture();
    let (eaten, uses, most_seated) = network.run()?;
    if let Some(path) = dot {
        std::fs::write(&path, picture.to_dot())?;
        println!("picture written to {path}");
    }
    for (p, meals) in eaten.into_iter().enumerate() {
        println!("philosopher {p} ate {} meals", meals?);
    }
    for (f, used) in uses.into_iter().enumerate() {
        println!("fork {f} was used {} times", used?);
    }
    let most_seated = most_seated?;
    println!(
        "the butler never seated more than {}: {}",
        PHILOSOPHERS - 1,
        most_seated < PHILOSOPHERS
    );
    Ok(())
}
