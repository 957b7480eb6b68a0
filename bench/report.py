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
# Marks the section of docs/benchmarks.md that scripts/profile writes.
PROFILE_START, PROFILE_END = "<!-- profile -->", "<!-- /profile -->"


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


def celery(record):
    """The Celery peer's name, with the worker pool that ran the figure."""
    pool, concurrency = extra(record, "pool"), extra(record, "concurrency")
    if not pool:
        return "Celery delay().get()"
    return f"Celery delay().get(), {pool} pool" + (
        f" x{concurrency}" if concurrency and concurrency > 1 else "")


def counts(records, scenario):
    return sorted({r["clients"] for r in records if r["scenario"] == scenario})


def of(n):
    return "1 client" if n == 1 else f"{n} clients"


def rows(records, clients):
    out = []
    add = out.append
    # metric, unit, higher-is-better, 1-node, 3-node, peer name, peer value, goal
    dispatch = find(records, "celery-redis", "dispatch")
    for key, label, goal in (("p50_ms", "p50", "ratio >= 1x (p50 <= Celery's)"),
                             ("p99_ms", "p99", "<= 10 ms")):
        add((f"dispatch latency {label}, 1 client", "ms", False,
             lat(find(records, CM1, "dispatch"), key), lat(find(records, CM3, "dispatch"), key),
             celery(dispatch), lat(dispatch, key), goal))
    for n in (1, clients):
        peer = find(records, "celery-redis", "lifecycle", n)
        add((f"lifecycle throughput, {of(n)}", "/s", True,
             rate(find(records, CM1, "lifecycle", n)), rate(find(records, CM3, "lifecycle", n)),
             celery(peer), rate(peer), "ratio >= 5x; 1 node >= 2,500/s" if n > 1 else ""))
    etcds = (("etcd-3", "etcd put, JSON gateway", "ratio >= 1x"),
             ("etcd-3-grpc", "etcd put, gRPC", "ratio >= 0.5x"))
    for n in counts(records, "writes"):
        for system, peer, goal in etcds:
            add((f"durable writes, {of(n)}", "/s", True,
                 rate(find(records, CM1, "writes", n)), rate(find(records, CM3, "writes", n)),
                 peer, rate(find(records, system, "writes", n)), goal if n > 1 else ""))
        for system, peer, _ in etcds:
            add((f"durable write latency p50, {of(n)}", "ms", False,
                 lat(find(records, CM1, "writes", n)), lat(find(records, CM3, "writes", n)),
                 peer, lat(find(records, system, "writes", n)), ""))
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
        # The queue also holds what the write scenarios left: name what it really held.
        held = [extra(b, "waiting") for b in (b1, b3)]
        held = " / ".join(f"{h:,}" if h is not None else "?" for h in held)
        label = f"backlog of at least {size:,} (waiting, 1 / 3 nodes: {held})"
        add((f"assign p50, {label}", "ms", False, lat(b1), lat(b3), "", None,
             "<= 1.5x empty" if size >= 1_000_000 else ""))
        add((f"node RSS, {label}", "MiB", False, extra(b1, "rss_mib"),
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
    for ax, scenario, peers, title in (
        (axes[1], "lifecycle", [("celery-redis", "Celery+Redis")], "lifecycle per second"),
        (axes[2], "writes", [("etcd-3", "etcd JSON"), ("etcd-3-grpc", "etcd gRPC")],
         "durable writes per second"),
    ):
        names = [label for _, label in systems + peers]
        ns = counts(records, scenario)
        width = 0.8 / max(len(ns), 1)
        for k, n in enumerate(ns):
            values = [rate(find(records, system, scenario, n)) or 0
                      for system, _ in systems + peers]
            offset = (k - (len(ns) - 1) / 2) * width
            ax.bar([x + offset for x in range(len(names))], values, width, label=of(n))
        ax.set_xticks(list(range(len(names))), names)
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
    grpc = find(records, "etcd-3-grpc", "writes")
    connections, to = extra(grpc, "connections"), extra(grpc, "to")
    where = "to the leader" if to == "leader" else "spread over the members"
    layout = (f"one HTTP/2 connection per client, {where}"
              if connections in (None, "one per client")
              else f"clients share {connections} HTTP/2 connection{'s' if connections != 1 else ''}"
              f" {where}")
    # The CPU profile section is written by scripts/profile; a new run of the table keeps it.
    page = docs / "benchmarks.md"
    profile = ""
    if page.exists():
        old = page.read_text()
        start, end = old.find(PROFILE_START), old.find(PROFILE_END)
        if 0 <= start < end:
            profile = "\n" + old[start:end + len(PROFILE_END)] + "\n"
    page.write_text(
        "# Benchmarks\n\n"
        f"Measured {date} with `{command}` on {machine}.\n"
        "Every figure in one table comes from the same run (the disk's speed drifts; compare only\n"
        "figures of one run). Colonymesh runs release builds with fsync on; 1 node is\n"
        "`colonymesh dev`, 3 nodes is `testnet/up 3` on loopback (clients spread over the nodes;\n"
        "dispatch submits on n1 and the executor waits on n3). Peers, same machine, same run, same\n"
        "client concurrency: etcd 3.4 (Debian's `etcd-server`), 3 members on loopback, 256-byte\n"
        "puts through its JSON gateway (clients spread over the members) and through its native\n"
        "gRPC API (`etcdserverpb.KV/Put`, the bench's own unary client;\n"
        f"{layout}: the fastest layout measured);\n"
        "Celery (PyPI) with Redis (Debian's `redis-server`, no persistence), no-op tasks, one\n"
        "worker started afresh for each scenario with the pool that does that scenario best on\n"
        "this machine (named in the peer column; the pools tried are in `scripts/bench`).\n"
        "The ratio column is how many times better the 3-node mesh does than the peer (above 1:\n"
        "better); the goals' ratios are that column.\n\n"
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
        f"{text}\n\n![benchmarks](benchmarks.png)\n{profile}\n"
        f"<details><summary>raw records</summary>\n\n```json\n{raw}\n```\n</details>\n"
    )


if __name__ == "__main__":
    main()
