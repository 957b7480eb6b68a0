"""Celery + Redis figures beside Colonymesh's, with the same client concurrency.

- dispatch: one client, `noop.delay().get()` round trips (submit, a worker runs it, the
  result comes back), p50/p99/max;
- lifecycle: CLIENTS threads each looping `delay().get()` for SECONDS; tasks per second.

Appends JSON records (the schema of colonymesh-bench) to BENCH_RESULTS and prints a line each.
Usage: python celery_bench.py COUNT CLIENTS SECONDS
"""

import json
import os
import sys
import threading
import time

from noop_tasks import noop


def latency(samples):
    samples = sorted(samples)
    if not samples:
        return {"n": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}

    def at(p):
        return samples[round((len(samples) - 1) * p)] * 1000.0

    return {"n": len(samples), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0)}


def emit(scenario, clients, rate, samples):
    record = {
        "system": "celery-redis",
        "scenario": scenario,
        "clients": clients,
        "rate": rate,
        "latency": latency(samples),
    }
    lat = record["latency"]
    print(
        f"{'celery-redis':<14} {scenario:<18} clients={clients:<4} p50={lat['p50_ms']:>8.3f} ms "
        f"p99={lat['p99_ms']:>8.3f} ms max={lat['max_ms']:>8.3f} ms"
        + (f"  rate={rate:.0f}/s" if rate else ""),
        flush=True,
    )
    path = os.environ.get("BENCH_RESULTS")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(record) + "\n")


def round_trip():
    start = time.perf_counter()
    noop.delay().get(timeout=30)
    return time.perf_counter() - start


def main():
    count, clients, seconds = (int(a) for a in sys.argv[1:4])
    for _ in range(20):  # warm up connections and the worker
        round_trip()
    emit("dispatch", 1, 0.0, [round_trip() for _ in range(count)])

    for n in (1, clients):
        samples, lock = [], threading.Lock()
        deadline = time.perf_counter() + seconds

        def loop():
            local = []
            while time.perf_counter() < deadline:
                local.append(round_trip())
            with lock:
                samples.extend(local)

        threads = [threading.Thread(target=loop) for _ in range(n)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        emit("lifecycle", n, len(samples) / (time.perf_counter() - start), samples)


if __name__ == "__main__":
    main()
