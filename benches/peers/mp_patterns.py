"""Python multiprocessing doing the pattern workloads of benches/patterns.rs.

Prints one JSON object: {"<workload>": seconds_per_operation, ...}. Run by the Rust benchmark
in the same run, so that ratios compare like with like on this machine. The work is done in a
child `multiprocessing.Process` (start method 'spawn'); queues, managers, locks and barriers are
made by the parent, which owns the Manager's server, as in the Rust benchmark.

Argument: a JSON object of counts, {"queue": n, "list": n, "dict": n, "lock": n, "barrier": n}.
"""
import json
import multiprocessing as mp
import sys
import time


def queue_producer(queue, count):
    for n in range(count + 1):  # one warm-up item, then `count`
        queue.put(n)


def queue_rate(count):
    """Parent gets what a child puts: per item, timed in the parent from first to last get."""
    queue = mp.Queue()
    worker = mp.Process(target=queue_producer, args=(queue, count))
    worker.start()
    queue.get()  # the warm-up item: the child is running
    started = time.perf_counter()
    for _ in range(count):
        queue.get()
    elapsed = time.perf_counter() - started
    worker.join()
    return elapsed / count


def list_appender(shared, count, result):
    shared.append(0)  # warm-up: connects to the manager
    started = time.perf_counter()
    for n in range(count):
        shared.append(n)
    result.put(time.perf_counter() - started)


def dict_setter(shared, count, result):
    shared[count] = 0  # warm-up: connects to the manager
    started = time.perf_counter()
    for n in range(count):
        shared[n] = n
    result.put(time.perf_counter() - started)


def manager_rate(make, target, count):
    """A child changes state served by the parent's manager: per operation, timed in the child."""
    with mp.Manager() as manager:
        shared = make(manager)
        result = mp.Queue()
        worker = mp.Process(target=target, args=(shared, count, result))
        worker.start()
        elapsed = result.get()
        worker.join()
    return elapsed / count


def lock_contender(lock, count, ready, result):
    lock.acquire()  # warm-up
    lock.release()
    ready.set()
    started = time.perf_counter()
    for _ in range(count):
        lock.acquire()
        lock.release()
    result.put(time.perf_counter() - started)


def lock_rate(lock, count):
    """Parent and child both take and give back one lock `count` times: per pair, in the child."""
    ready, result = mp.Event(), mp.Queue()
    worker = mp.Process(target=lock_contender, args=(lock, count, ready, result))
    worker.start()
    ready.wait()
    for _ in range(count):
        lock.acquire()
        lock.release()
    elapsed = result.get()
    worker.join()
    return elapsed / count


def manager_lock_rate(count):
    with mp.Manager() as manager:
        return lock_rate(manager.Lock(), count)


def barrier_party(barrier, count, result):
    barrier.wait()  # warm-up, and both parties start together
    started = time.perf_counter()
    for _ in range(count):
        barrier.wait()
    result.put(time.perf_counter() - started)


def barrier_rate(count):
    """Parent and child pass a 2-party barrier `count` times: per cycle, timed in the child."""
    barrier, result = mp.Barrier(2), mp.Queue()
    worker = mp.Process(target=barrier_party, args=(barrier, count, result))
    worker.start()
    for _ in range(count + 1):
        barrier.wait()
    elapsed = result.get()
    worker.join()
    return elapsed / count


def main():
    counts = json.loads(sys.argv[1])
    mp.set_start_method("spawn")
    results = {
        "queue": queue_rate(counts["queue"]),
        "list": manager_rate(lambda m: m.list(), list_appender, counts["list"]),
        "dict": manager_rate(lambda m: m.dict(), dict_setter, counts["dict"]),
        "lock": lock_rate(mp.Lock(), counts["lock"]),
        "manager_lock": manager_lock_rate(counts["lock"]),
        "barrier": barrier_rate(counts["barrier"]),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
