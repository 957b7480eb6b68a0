"""Celery + Redis figures beside Colonymesh's, with the same client concurrency.

One scenario per run, against the worker scripts/bench started for it (each scenario runs
with the worker pool that does it best on the bench machine; the pool is recorded):

- dispatch: one client, `noop.delay().get()` round trips (submit, a worker runs it, the
  result comes back), p50/p99/max of COUNT of them;
- lifecycle: CLIENTS threads each looping `delay().get()` for SECONDS; tasks per second.

Appends JSON records (the schema of colonymesh-bench, with `extra.pool` and
`extra.concurrency` naming the worker) to BENCH_RESULTS and prints a line each.
Usage: python celery_bench.py --pool POOL --concurrency N dispatch COUNT
       python celery_bench.py --pool POOL --concurrency N lifecycle CLIENTS SECONDS
"""

import argparse
import json
import os
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


def emit(scenario, clients, rate, samples, worker):
    record = {
        "system": "celery-redis",
        "scenario": scenario,
        "clients": clients,
        "rate": rate,
        "latency": latency(samples),
        "extra": worker,
    }
    lat = record["latency"]
    print(
        f"{'celery-redis':<14} {scenario:<18} clients={clients:<4} p50={lat['p50_ms']:>8.3f} ms "
        f"p99={lat['p99_ms']:>8.3f} ms max={lat['max_ms']:>8.3f} ms"
        + (f"  rate={rate:.0f}/s" if rate else "")
        + f"  pool={worker['pool']} concurrency={worker['concurrency']}",
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


def lifecycle(clients, seconds):
    """Returns (tasks per second, round-trip samples) of CLIENTS threads looping for SECONDS."""
    samples, lock = [], threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop():
        local = []
        while time.perf_counter() < deadline:
            local.append(round_trip())
        with lock:
            samples.extend(local)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(samples) / (time.perf_counter() - start), samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", required=True, help="the worker's pool (recorded)")
    parser.add_argument("--concurrency", type=int, required=True, help="(recorded)")
    scenarios = parser.add_subparsers(dest="scenario", required=True)
    dispatch = scenarios.add_parser("dispatch")
    dispatch.add_argument("count", type=int)
    loop = scenarios.add_parser("lifecycle")
    loop.add_argument("clients", type=int)
    loop.add_argument("seconds", type=float)
    args = parser.parse_args()
    worker = {"pool": args.pool, "concurrency": args.concurrency}

    # Waits for the worker (just started) and warms up connections; not counted.
    noop.delay().get(timeout=60)
    for _ in range(20):
        round_trip()
    if args.scenario == "dispatch":
        emit("dispatch", 1, 0.0, [round_trip() for _ in range(args.count)], worker)
    else:
        rate, samples = lifecycle(args.clients, args.seconds)
        emit("lifecycle", args.clients, rate, samples, worker)


if __name__ == "__main__":
    main()
