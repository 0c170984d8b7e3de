//! The `--dot FILE` option of the examples that draw their network.
#![allow(dead_code, unreachable_pub)]

/// The command line's `--dot FILE` (if given) and its other arguments.
pub fn dot_option() -> (Option<String>, Vec<String>) {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let dot = args.iter().position(|arg| arg == "--dot").map(|at| {
        let file = args.get(at + 1).cloned();
        args.drain(at..(at + 2).min(args.len()));
        file
    });
    (dot.flatten(), args)
}
