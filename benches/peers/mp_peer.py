"""Python multiprocessing doing the cross-process workloads of benches/cross_process.rs.

Prints one JSON object: {"<workload>": seconds_per_operation, ...}. Run by the Rust benchmark
in the same run, so that ratios compare like with like on this machine.
"""
import json
import multiprocessing as mp
import sys
import time


def pipe_echo(conn, count):
    for _ in range(count):
        conn.send_bytes(conn.recv_bytes())


def queue_echo(inbox, outbox, count):
    for _ in range(count):
        outbox.put(inbox.get())


def pipe_source(conn, payload, count):
    for _ in range(count):
        conn.send_bytes(payload)


def queue_source(queue, payload, count):
    for _ in range(count):
        queue.put(payload)


def pipe_echo_busy(conn, count):
    for _ in range(count):
        while not conn.poll():
            pass
        conn.send_bytes(conn.recv_bytes())


def round_trip_pipe(size, count, busy=False):
    """With `busy`, neither side ever sleeps in recv: each polls until a message is there."""
    parent, child = mp.Pipe()
    worker = mp.Process(target=pipe_echo_busy if busy else pipe_echo, args=(child, count + 1))
    worker.start()
    payload = b"x" * size
    parent.send_bytes(payload)
    parent.recv_bytes()  # warm up
    started = time.perf_counter()
    for _ in range(count):
        parent.send_bytes(payload)
        if busy:
            while not parent.poll():
                pass
        parent.recv_bytes()
    elapsed = time.perf_counter() - started
    worker.join()
    return elapsed / count


def round_trip_queue(size, count):
    inbox, outbox = mp.Queue(), mp.Queue()
    worker = mp.Process(target=queue_echo, args=(inbox, outbox, count + 1))
    worker.start()
    payload = b"x" * size
    inbox.put(payload)
    outbox.get()
    started = time.perf_counter()
    for _ in range(count):
        inbox.put(payload)
        outbox.get()
    elapsed = time.perf_counter() - started
    worker.join()
    return elapsed / count


def one_way_pipe(size, count):
    parent, child = mp.Pipe(duplex=False)
    worker = mp.Process(target=pipe_source, args=(child, b"x" * size, count + 1))
    worker.start()
    parent.recv_bytes()
    started = time.perf_counter()
    for _ in range(count):
        parent.recv_bytes()
    elapsed = time.perf_counter() - started
    worker.join()
    return elapsed / count


def one_way_queue(size, count):
    queue = mp.Queue()
    worker = mp.Process(target=queue_source, args=(queue, b"x" * size, count + 1))
    worker.start()
    queue.get()
    started = time.perf_counter()
    for _ in range(count):
        queue.get()
    elapsed = time.perf_counter() - started
    worker.join()
    return elapsed / count


def main():
    counts = json.loads(sys.argv[1])  # {"8": n, "65536": n, "1048576": n}
    mp.set_start_method("spawn")
    results = {}
    for size_text, count in counts.items():
        size = int(size_text)
        results[f"round_trip/{size}/pipe"] = round_trip_pipe(size, count)
        if size == 8:
            results[f"round_trip/{size}/pipe_busy"] = round_trip_pipe(size, count, busy=True)
        results[f"round_trip/{size}/queue"] = round_trip_queue(size, count)
        results[f"one_way/{size}/pipe"] = one_way_pipe(size, count)
        results[f"one_way/{size}/queue"] = one_way_queue(size, count)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
