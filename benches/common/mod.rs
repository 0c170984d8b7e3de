//! What the benchmarks share: medians, and running a Python peer in the same run.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::process::Command;

/// How many times each measurement is repeated; the median is reported.
pub const REPEATS: usize = 3;

/// The median of `samples`.
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Microseconds, for a table.
pub fn micros(seconds: f64) -> String {
    format!("{:.1}", seconds * 1e6)
}

/// Runs `python3 benches/peers/<script> <argument>` [`REPEATS`] times; each run prints one
/// flat JSON object of seconds per operation. Returns the median of each key, or `None` if
/// Python is missing or the peer failed (said on stderr).
pub fn python_medians(script: &str, argument: &str) -> Option<HashMap<String, f64>> {
    let script = format!("{}/benches/peers/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut runs: Vec<HashMap<String, f64>> = Vec::new();
    for _ in 0..REPEATS {
        let output = Command::new("python3")
            .arg(&script)
            .arg(argument)
            .output()
            .ok()?;
        if !output.status.success() {
            eprintln!(
                "python peer failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            return None;
        }
        runs.push(parse_flat_json(&String::from_utf8_lossy(&output.stdout)));
    }
    let keys: Vec<String> = runs[0].keys().cloned().collect();
    Some(
        keys.into_iter()
            .map(|key| {
                let samples = runs
                    .iter()
                    .filter_map(|run| run.get(&key).copied())
                    .collect();
                (key, median(samples))
            })
            .collect(),
    )
}

/// Parses a peer's one-level JSON object of numbers: the last line of `text` that starts one
/// (a peer may print other lines before it).
pub fn parse_flat_json(text: &str) -> HashMap<String, f64> {
    let line = text.lines().rev().find(|l| l.trim_start().starts_with('{'));
    line.unwrap_or("")
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once(':')?;
            Some((
                key.trim().trim_matches('"').to_string(),
                value.trim().parse().ok()?,
            ))
        })
        .collect()
}
