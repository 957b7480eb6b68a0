"""Where the CPU of the nodes goes, per operation: reads `perf script` output (samples with
call stacks) of the node processes, sorts each sample into one category by its stack, and
scales the shares to the node CPU time one operation costs (measured apart, without perf).

Usage: python profile.py SCRIPT.txt CPU_US_PER_OP [LABEL]
Prints one JSON object: {"label", "cpu_us_per_op", "samples", "categories": {name: us}}.
`scripts/profile` runs it for each binary and scenario and prints the table.

A sample belongs to the first category whose pattern matches any frame of its stack, in the
order below (signature checks inside an HTTP handler count as signatures, RocksDB calls
made by apply count as RocksDB); samples matching none are sorted by their innermost frame.
"""

import json
import re
import sys

CATEGORIES = [
    ("signatures", r"k256|secp256k1|ecdsa|recover_id|proto::crypto|sha3|keccak|elliptic_curve"),
    ("RocksDB", r"rocksdb|snappy"),
    ("apply (state machine)", r"node::state::"),
    ("raft (openraft, log and state machine adaptors)", r"openraft|node::raft"),
    ("mesh network (libp2p, yamux, noise, pipes)",
     r"libp2p|yamux|noise|multistream|quinn|chacha|poly1305|ring_core|snow|node::net|node::mesh"
     r"|cbor4ii"),
    ("HTTP and JSON (axum, hyper, envelope)",
     r"axum|hyper|serde_json|node::api|base64|proto::|httparse|tower"),
]
SCHEDULING = re.compile(
    r"finish_task_switch|__schedule|schedule|futex|try_to_wake_up|ttwu|pick_next|"
    r"enqueue_task|dequeue_task|_raw_spin_unlock_irq"
)
OTHER_KERNEL = "kernel: other (network stack, IO)"
ORDER = [name for name, _ in CATEGORIES] + [
    "raft log fsync thread",
    "kernel: scheduling and wake-ups",
    OTHER_KERNEL,
    "tokio runtime, allocation, other",
]


def samples(path):
    """Yields (thread name, frames) of each sample of `perf script -F comm,tid,ip,sym,dso`."""
    comm, frames = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if comm is not None:
                    yield comm, frames
                comm, frames = None, []
            elif not line[0].isspace():
                comm = line.split()[0]
            else:
                frames.append(line.strip())
    if comm is not None:
        yield comm, frames


def category(comm, frames):
    if comm == "raft-log-sync":
        return "raft log fsync thread"
    text = "\n".join(frames)
    for name, pattern in CATEGORIES:
        if re.search(pattern, text):
            return name
    top = frames[0] if frames else ""
    if SCHEDULING.search(top):
        return "kernel: scheduling and wake-ups"
    if "kernel" in text:
        return OTHER_KERNEL
    return "tokio runtime, allocation, other"


def main():
    path, cpu_us = sys.argv[1], float(sys.argv[2])
    label = sys.argv[3] if len(sys.argv) > 3 else path
    counts = {name: 0 for name in ORDER}
    total = 0
    for comm, frames in samples(path):
        counts[category(comm, frames)] += 1
        total += 1
    if total == 0:
        sys.exit(f"profile.py: no samples in {path}")
    shares = {name: cpu_us * counts[name] / total for name in ORDER}
    print(json.dumps({"label": label, "cpu_us_per_op": cpu_us, "samples": total,
                      "categories": shares}))


if __name__ == "__main__":
    main()
