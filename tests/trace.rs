//! Traces of a run: Chrome trace-event JSON that parses, with the expected events, and a
//! plain CSP trace in the order things happened.

use csp::prelude::*;
use csp::trace;

#[process]
fn produce(out: Writer<u32>) -> Result<(), csp::Error> {
    for n in 0..3 {
        out.write(n)?;
    }
    out.poison();
    Ok(())
}

#[process]
fn consume(input: Reader<u32>) -> u32 {
    input.iter().sum()
}

/// One test: tracing is global to the OS process, and tests on other threads would mix in.
#[test]
fn a_traced_run_exports_chrome_json_and_a_csp_trace_and_nothing_is_recorded_when_off() {
    // Off: nothing is recorded.
    let (writer, reader) = csp::buffered_channel::<u8>(1);
    writer.write(1).unwrap();
    reader.read().unwrap();
    assert!(trace::stop().events().is_empty());

    let channel = Channel::named("numbers");
    let network = parallel![produce(channel.writer()), consume(channel.reader())];
    drop(channel);
    trace::start();
    let (_, sum) = network.run().unwrap();
    let recorded = trace::stop();
    assert_eq!(sum, 3);

    // The CSP trace: three communications on `numbers`, then its poison.
    let csp = recorded.to_csp();
    let events: Vec<&str> = csp
        .lines()
        .filter(|line| !line.starts_with("start ") && !line.starts_with("end "))
        .collect();
    // Then each side retires as its process ends.
    assert_eq!(
        events,
        [
            "numbers",
            "numbers",
            "numbers",
            "poison numbers",
            "retire numbers",
            "retire numbers"
        ],
        "{csp}"
    );
    for process in ["trace::produce", "trace::consume"] {
        let start = csp.find(&format!("start {process}\n")).expect(&csp);
        let end = csp.find(&format!("end {process}\n")).expect(&csp);
        assert!(start < end, "{csp}");
    }

    // The Chrome trace: valid JSON, a begin and an end per process, an instant per message.
    let json: serde_json::Value = serde_json::from_str(&recorded.to_chrome_json()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let count = |phase: &str, name: &str| {
        events
            .iter()
            .filter(|e| e["ph"] == phase && e["name"] == name)
            .count()
    };
    assert_eq!(count("B", "trace::produce"), 1);
    assert_eq!(count("E", "trace::produce"), 1);
    assert_eq!(count("B", "trace::consume"), 1);
    assert_eq!(count("i", "numbers"), 3);
    assert_eq!(count("i", "poison numbers"), 1);
    let times: Vec<f64> = events.iter().filter_map(|e| e["ts"].as_f64()).collect();
    assert!(
        times.windows(2).all(|pair| pair[0] <= pair[1]),
        "in order of time"
    );
}
