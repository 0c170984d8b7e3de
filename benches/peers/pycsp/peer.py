"""PyCSP 0.9.2 (and Python multiprocessing) peers for benches/suite.rs.

Usage: python peer.py WORKLOAD ARGS...; prints one flat JSON object of seconds per operation.
The suite runs it several times, in the same run as csp, with PYCSP_HOST=127.0.0.1.

    commstime process LOOPS        commstime with every process a @process (a thread)
    commstime multiprocess LOOPS   the same with every process a @multiprocess (an OS process)
    mp_start COUNT                 start and join one multiprocessing.Process (spawn), COUNT times
"""
import collections
import collections.abc
import json
import sys
import time

# PyCSP 0.9.2 uses collections.Callable, which Python 3.10 removed: alias it here, before
# PyCSP is imported, instead of patching the installed package.
collections.Callable = collections.abc.Callable


def commstime(kind, loops):
    import pycsp.parallel as csp

    decorate = csp.process if kind == "process" else csp.multiprocess

    @decorate
    def prefix(cin, cout, initial):
        cout(initial)
        while True:
            cout(cin())

    @decorate
    def delta(cin, to_consumer, to_succ):
        while True:
            value = cin()
            to_consumer(value)
            to_succ(value)

    @decorate
    def succ(cin, cout):
        while True:
            cout(cin() + 1)

    @decorate
    def consumer(cin, loops):
        cin()  # warm up: the network is running
        started = time.perf_counter()
        for _ in range(loops):
            cin()
        elapsed = time.perf_counter() - started
        csp.poison(cin)  # shut the whole network down
        return elapsed

    a, b, c, d = (csp.Channel(name) for name in ("a", "b", "c", "d"))
    results = csp.Parallel(
        prefix(b.reader(), a.writer(), 0),
        delta(a.reader(), d.writer(), c.writer()),
        succ(c.reader(), b.writer()),
        consumer(d.reader(), loops),
    )
    csp.shutdown()
    elapsed = results[3]
    if not isinstance(elapsed, float):
        raise RuntimeError(f"the consumer returned {elapsed!r}")
    return {"per_loop": elapsed / loops}


def nothing():
    pass


def mp_start(count):
    import multiprocessing as mp

    mp.set_start_method("spawn")
    worker = mp.Process(target=nothing)  # warm up
    worker.start()
    worker.join()
    started = time.perf_counter()
    for _ in range(count):
        worker = mp.Process(target=nothing)
        worker.start()
        worker.join()
    return {"per_start": (time.perf_counter() - started) / count}


def main():
    workload = sys.argv[1]
    if workload == "commstime":
        result = commstime(sys.argv[2], int(sys.argv[3]))
    elif workload == "mp_start":
        result = mp_start(int(sys.argv[2]))
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
