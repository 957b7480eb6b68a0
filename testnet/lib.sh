# Shared by the testnet scripts: paths, the binary, pid handling. Source it; do not run it.
# Layout under testnet/: data/NAME (node state), logs/NAME.log, run/NAME.pid and
# run/NAME.cmd (the command line, for restart), env.sh (exports for node n1), nodes.txt.

testnet_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$testnet_dir/.." && pwd)"
data_dir="$testnet_dir/data"
logs_dir="$testnet_dir/logs"
run_dir="$testnet_dir/run"

# The binary, built once per call to up (PROFILE=release for a release build; BINARY=PATH
# runs that binary instead, e.g. an older build for an upgrade test).
binary() {
    if [[ -n ${BINARY:-} ]]; then
        echo "$BINARY"
        return
    fi
    local profile=${PROFILE:-debug}
    local target
    target="$(cd "$repo_root" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    echo "$target/$profile/colonymesh"
}

build() {
    [[ -n ${BINARY:-} ]] && return 0
    local flags=()
    [[ ${PROFILE:-debug} == release ]] && flags+=(--release)
    (cd "$repo_root" && cargo build --quiet "${flags[@]}" -p node --bin colonymesh)
}

# True when the pid in run/NAME.pid is a live process.
running() {
    local pidfile="$run_dir/$1.pid"
    [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# Starts node NAME from its saved command line, in the background, recording its pid.
launch() {
    local name=$1
    # shellcheck disable=SC2046
    nohup bash -c "exec $(cat "$run_dir/$name.cmd")" >>"$logs_dir/$name.log" 2>&1 &
    echo $! >"$run_dir/$name.pid"
}

# Sends SIGNAL to node NAME and waits (at most 15 s) until it is gone.
stop_node() {
    local name=$1 signal=${2:-TERM}
    running "$name" || { rm -f "$run_dir/$name.pid"; return 0; }
    local pid
    pid="$(cat "$run_dir/$name.pid")"
    kill -s "$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "testnet: $name did not stop after SIG$signal; sending KILL" >&2
        kill -s KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$run_dir/$name.pid"
}

# Waits (at most 60 s) until node NAME answers /health on API port PORT.
wait_healthy() {
    local name=$1 port=$2
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
        running "$name" || { echo "testnet: $name exited; see $logs_dir/$name.log" >&2; return 1; }
        sleep 0.1
    done
    echo "testnet: $name not healthy after 60 s; see $logs_dir/$name.log" >&2
    return 1
}
