#!/usr/bin/env bash
# Run the pycolonies conformance suite against a fresh colonymesh dev node.
#
# Usage: tests/python/run.sh BINARY [PYTEST_ARGS...]
#
# Starts `BINARY dev` on a temporary data dir with an OS-chosen API port, reads
# the `export COLONIES_...=...` lines it prints on stdout, waits for /health,
# then runs pytest on tests/python with that environment. The node is always
# stopped (by its PID) on exit. Exits with pytest's status.
#
# Environment:
#   PYTHON              interpreter that has requirements.txt installed (default python3)
#   PYTEST_TIMEOUT_S    hard cap on the whole pytest run, seconds (default 300)
#   COLONYMESH_KEEP_TMP if 1, keep the temp dir (data, env.sh, node.log) for debugging
#   COLONYMESH_TLS      if 1, start `dev --tls` and run pycolonies over HTTPS/WSS, trusting
#                       the node's self-signed certificate (REQUESTS_CA_BUNDLE, SSL_CERT_FILE)
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BINARY [PYTEST_ARGS...]" >&2
    exit 2
fi

binary=$1
shift
if [[ ! -x "$binary" ]]; then
    echo "run.sh: binary not found or not executable: $binary" >&2
    exit 2
fi
# Absolute path, because we cd to the repo root below.
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

python=${PYTHON:-python3}
pytest_timeout_s=${PYTEST_TIMEOUT_S:-300}
# Startup bounds: a debug build starts in well under a second; 30 s leaves room
# for a loaded 2-core CI machine without letting a hung node stall CI.
startup_timeout_s=30
# How long to wait for the node to exit after SIGTERM before SIGKILL.
stop_timeout_s=10

tmp="$(mktemp -d "${TMPDIR:-/tmp}/colonymesh-pytest.XXXXXX")"
node_pid=""

stop_node() {
    [[ -n "$node_pid" ]] || return 0
    if kill -0 "$node_pid" 2>/dev/null; then
        kill "$node_pid" 2>/dev/null || true
        # Bounded graceful stop; a node that ignores SIGTERM must not hang CI.
        local deadline=$((SECONDS + stop_timeout_s))
        while kill -0 "$node_pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.1
        done
        if kill -0 "$node_pid" 2>/dev/null; then
            echo "run.sh: node $node_pid did not stop within ${stop_timeout_s}s; sending SIGKILL" >&2
            kill -KILL "$node_pid" 2>/dev/null || true
        fi
    fi
    wait "$node_pid" 2>/dev/null || true
    node_pid=""
}

cleanup() {
    local rc=$?
    stop_node
    if [[ $rc -ne 0 && -f "$tmp/node.log" ]]; then
        echo "run.sh: failed (exit $rc); last lines of node.log:" >&2
        tail -n 60 "$tmp/node.log" >&2 || true
    fi
    if [[ "${COLONYMESH_KEEP_TMP:-0}" == 1 ]]; then
        echo "run.sh: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
# Turn Ctrl-C / SIGTERM into a normal exit so the EXIT trap stops the node.
trap 'exit 130' INT
trap 'exit 143' TERM

# `colonymesh dev` reuses keys/names from COLONIES_* when they are set; a
# developer's shell often has them (for the Go CLI). The suite needs the
# node's own fresh identity, so start it with none of them.
while IFS= read -r var; do
    case "$var" in
    COLONIES_*) unset "$var" ;;
    esac
done < <(compgen -e)

tls_flag=()
if [[ "${COLONYMESH_TLS:-0}" == 1 ]]; then
    tls_flag=(--tls)
fi
"$binary" dev --data-dir "$tmp/data" --api-port 0 "${tls_flag[@]}" >"$tmp/env.sh" 2>"$tmp/node.log" &
node_pid=$!

# The dev command prints `export NAME=value` lines and flushes them before it
# serves; COLONIES_PRVKEY (the approved executor's key) comes last. Match the
# full 64-hex key so a half-written line is never sourced.
deadline=$((SECONDS + startup_timeout_s))
until grep -qE "^export COLONIES_PRVKEY=['\"]?[0-9a-fA-F]{64}['\"]?\$" "$tmp/env.sh"; do
    if ! kill -0 "$node_pid" 2>/dev/null; then
        echo "run.sh: node exited before printing its environment" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "run.sh: node printed no COLONIES_PRVKEY within ${startup_timeout_s}s" >&2
        exit 1
    fi
    sleep 0.1
done

# shellcheck source=/dev/null
source "$tmp/env.sh"
for var in COLONIES_SERVER_HOST COLONIES_SERVER_PORT COLONIES_SERVER_TLS \
    COLONIES_SERVER_PRVKEY COLONIES_COLONY_NAME COLONIES_COLONY_PRVKEY \
    COLONIES_EXECUTOR_NAME COLONIES_EXECUTOR_TYPE COLONIES_PRVKEY; do
    if [[ -z "${!var:-}" ]]; then
        echo "run.sh: node did not print $var" >&2
        exit 1
    fi
    export "${var?}"
done

# Loopback must never go through a proxy a CI machine may define.
export NO_PROXY="127.0.0.1,localhost,::1${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

scheme=http
curl_tls=()
if [[ "${COLONIES_SERVER_TLS}" == true ]]; then
    # pycolonies' requests and websocket-client read these; so does curl below.
    export REQUESTS_CA_BUNDLE="$COLONIES_TLS_CA" SSL_CERT_FILE="$COLONIES_TLS_CA"
    export WEBSOCKET_CLIENT_CA_BUNDLE="$COLONIES_TLS_CA"
    scheme=https
    curl_tls=(--cacert "$COLONIES_TLS_CA")
fi
health_url="$scheme://$COLONIES_SERVER_HOST:$COLONIES_SERVER_PORT/health"
deadline=$((SECONDS + startup_timeout_s))
until curl --silent --fail --noproxy '*' --max-time 1 "${curl_tls[@]}" --output /dev/null "$health_url"; do
    if ! kill -0 "$node_pid" 2>/dev/null; then
        echo "run.sh: node exited before $health_url answered" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "run.sh: $health_url not OK within ${startup_timeout_s}s" >&2
        exit 1
    fi
    sleep 0.1
done
echo "run.sh: node $node_pid up at $scheme://$COLONIES_SERVER_HOST:$COLONIES_SERVER_PORT (colony $COLONIES_COLONY_NAME)"

# -p no:cacheprovider: do not write .pytest_cache into the clone.
# timeout: pycolonies' HTTP calls have no timeout, so a wedged node would
# otherwise hang CI until its global limit.
status=0
timeout --kill-after=10 "$pytest_timeout_s" \
    "$python" -m pytest -q -p no:cacheprovider tests/python --ignore=tests/python/mesh "$@" || status=$?
if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "run.sh: pytest exceeded ${pytest_timeout_s}s" >&2
fi
exit "$status"
