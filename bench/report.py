"""Turns the JSON records of one `scripts/bench` run into a table: printed, written to
docs/benchmarks.md (with the machine, the command and the date) and plotted to
docs/benchmarks.png.

Usage: python report.py RESULTS.jsonl MACHINE COMMAND DATE
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CM1, CM3 = "colonymesh-1", "colonymesh-3"


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def find(records, system, scenario, clients=None):
    for r in records:
        if r["system"] == system and r["scenario"] == scenario:
            if clients is None or r["clients"] == clients:
                return r
    return None


def fmt(value, unit):
    if value is None:
        return "n/a"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return str(value)


def ratio(ours, peer, higher_is_better):
    if ours is None or peer is None or ours == 0 or peer == 0:
        return ""
    r = ours / peer if higher_is_better else peer / ours
    return f"{r:.2f}x"


def lat(record, key="p50_ms"):
    return record["latency"][key] if record else None


def rate(record):
    return record["rate"] if record else None


def extra(record, key):
    return record.get("extra", {}).get(key) if record else None


def rows(records, clients):
    out = []
    add = out.append
    # metric, unit, higher-is-better, 1-node, 3-node, peer name, peer value, goal
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        add((f"dispatch latency {label}, 1 client", "ms", False,
             lat(find(records, CM1, "dispatch"), key), lat(find(records, CM3, "dispatch"), key),
             "Celery delay().get()", lat(find(records, "celery-redis", "dispatch"), key),
             "p50 <= 2 ms, p99 <= 10 ms"))
    for n in (1, clients):
        add((f"lifecycle throughput, {n} clients", "/s", True,
             rate(find(records, CM1, "lifecycle", n)), rate(find(records, CM3, "lifecycle", n)),
             "Celery delay().get()", rate(find(records, "celery-redis", "lifecycle", n)),
             ">= 5,000/s" if n > 1 else ""))
    for n in (1, clients):
        add((f"durable writes, {n} clients", "/s", True,
             rate(find(records, CM1, "writes", n)), rate(find(records, CM3, "writes", n)),
             "etcd put", rate(find(records, "etcd-3", "writes", n)), ">= etcd"))
        add((f"durable write latency p50, {n} clients", "ms", False,
             lat(find(records, CM1, "writes", n)), lat(find(records, CM3, "writes", n)),
             "etcd put", lat(find(records, "etcd-3", "writes", n)), ""))
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        add((f"10-process workflow, submit to done, {label}", "ms", False,
             lat(find(records, CM1, "workflow-10"), key),
             lat(find(records, CM3, "workflow-10"), key), "", None, ""))
    shell = find(records, CM3, "shell-true")
    if shell:
        add((f"/bin/true processes through shell executors ({extra(shell, 'processes'):,})",
             "/s", True, None, rate(shell), "", None, ""))
    empty1 = extra(find(records, CM1, "lifecycle", 1), "assign_p50_ms")
    empty3 = extra(find(records, CM3, "lifecycle", 1), "assign_p50_ms")
    add(("assign p50, empty queue", "ms", False, empty1, empty3, "", None, ""))
    sizes = sorted({int(r["scenario"].split("-")[1]) for r in records
                    if r["scenario"].startswith("backlog-")})
    for size in sizes:
        b1 = find(records, CM1, f"backlog-{size}")
        b3 = find(records, CM3, f"backlog-{size}")
        add((f"assign p50 with {size:,} waiting", "ms", False, lat(b1), lat(b3), "", None,
             "<= 1.5x empty" if size >= 1_000_000 else ""))
        add((f"node RSS with {size:,} waiting", "MiB", False, extra(b1, "rss_mib"),
             extra(b3, "rss_mib"), "", None, "<= 1 GiB" if size >= 1_000_000 else ""))
    fail = [r for r in records if r["system"] == CM3 and r["scenario"] == "failover"]
    kills = sorted(x for x in (extra(r, "kill_to_assign_s") for r in fail) if x is not None)
    if kills:
        add((f"failover: kill -9 leader -> next assign, median of {len(kills)}", "s", False,
             None, kills[len(kills) // 2], "", None, "<= 1 s"))
    join = find(records, CM3, "join")
    if join:
        index = extra(join, "log_index")
        add(("join: new node serving", "s", False, None, extra(join, "ready_s"), "", None, ""))
        add((f"join: caught up (log index {index:,})", "s", False, None,
             extra(join, "caught_up_s"), "", None, ""))
    f1, f3 = find(records, CM1, "footprint"), find(records, CM3, "footprint")
    add(("idle RSS per node (max)", "MiB", False, extra(f1, "idle_rss_mib"),
         extra(f3, "idle_rss_mib"), "", None, "<= 50 MB"))
    add(("start -> ready", "s", False, extra(f1, "ready_s"), extra(f3, "ready_s"), "", None,
         "<= 1 s"))
    return out


def table(records, clients):
    lines = [
        "| metric | Colonymesh 1 node | Colonymesh 3 nodes | peer | peer figure | "
        "3 nodes vs peer | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for metric, unit, better, one, three, peer, peer_value, goal in rows(records, clients):
        lines.append(
            f"| {metric} | {fmt(one, unit)} | {fmt(three, unit)} | {peer} | "
            f"{fmt(peer_value, unit) if peer else ''} | {ratio(three, peer_value, better)} | {goal} |"
        )
    return "\n".join(lines)


def plot(records, clients, path):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    systems = [(CM1, "Colonymesh 1"), (CM3, "Colonymesh 3")]
    ax = axes[0]
    names, p50, p99 = [], [], []
    for system, label in systems + [("celery-redis", "Celery+Redis")]:
        r = find(records, system, "dispatch")
        if r:
            names.append(label)
            p50.append(lat(r))
            p99.append(lat(r, "p99_ms"))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], p50, 0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], p99, 0.4, label="p99")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("ms")
    ax.set_title("dispatch latency, 1 client (lower is better)")
    ax.legend()
    for ax, scenario, peer, title in (
        (axes[1], "lifecycle", ("celery-redis", "Celery+Redis"), "lifecycle per second"),
        (axes[2], "writes", ("etcd-3", "etcd 3 members"), "durable writes per second"),
    ):
        names, ones, manys = [], [], []
        for system, label in systems + [peer]:
            names.append(label)
            ones.append(rate(find(records, system, scenario, 1)) or 0)
            manys.append(rate(find(records, system, scenario, clients)) or 0)
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], ones, 0.4, label="1 client")
        ax.bar([x + 0.2 for x in xs], manys, 0.4, label=f"{clients} clients")
        ax.set_xticks(list(xs), names)
        ax.set_title(f"{title} (higher is better)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    results, machine, command, date = sys.argv[1:5]
    records = load(results)
    clients = max((r["clients"] for r in records if r["scenario"] == "lifecycle"), default=1)
    text = table(records, clients)
    print(text)
    docs = Path(__file__).resolve().parent.parent / "docs"
    plot(records, clients, docs / "benchmarks.png")
    raw = "\n".join(json.dumps(r) for r in records)
    (docs / "benchmarks.md").write_text(
        "# Benchmarks\n\n"
        f"Measured {date} with `{command}` on {machine}.\n"
        "Every figure in one table comes from the same run (the disk's speed drifts; compare only\n"
        "figures of one run). Colonymesh runs release builds with fsync on; 1 node is\n"
        "`colonymesh dev`, 3 nodes is `testnet/up 3` on loopback (clients spread over the nodes;\n"
        "dispatch submits on n1 and the executor waits on n3). Peers, same machine, same run, same\n"
        "client concurrency: etcd 3.4 (Debian's `etcd-server`), 3 members on loopback, 256-byte\n"
        "puts through its JSON gateway; Celery (PyPI) with Redis (Debian's `redis-server`, no\n"
        "persistence), no-op tasks, a prefork worker with 2 processes. The ratio column is how\n"
        "many times better the 3-node mesh does than the peer (above 1: better).\n\n"
        "- dispatch: submit -> assigned to an already waiting executor (Celery: `delay().get()`).\n"
        "- lifecycle: submit + assign + close per second, each client looping (Celery: `delay().get()`).\n"
        "- durable writes: submits nobody assigns (etcd: puts), acknowledged after fsync on a majority.\n"
        "- 10-process workflow: a root, 8 parallel children and a join (3 levels), no-op executors\n"
        "  (8 assign/close loops); from submit to the join closed (seen by a subscription).\n"
        "- /bin/true processes: real processes through the built-in shell executors of the\n"
        "  testnet's example config (4 per node), submitted by the clients, until all are closed.\n"
        "- backlog: one-try assign + close of 200 processes out of a queue of that many waiting ones,\n"
        "  and the largest node RSS then.\n"
        "- failover: `kill -9` of the leader while a client on a follower loops lifecycles.\n\n"
        f"{text}\n\n![benchmarks](benchmarks.png)\n\n"
        f"<details><summary>raw records</summary>\n\n```json\n{raw}\n```\n</details>\n"
    )


if __name__ == "__main__":
    main()
