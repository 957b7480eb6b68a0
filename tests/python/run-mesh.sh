#!/usr/bin/env bash
# Runs tests/python/mesh against a 3-node testnet (testnet/up 3 on BASE_PORT, default 7500):
# pycolonies submits on one node, assigns on another, closes on a third.
# Usage: tests/python/run-mesh.sh   (PYTHON: interpreter with requirements.txt installed)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"
python=${PYTHON:-python3}
export BASE_PORT=${BASE_PORT:-7500}
for name in $(env | grep -o '^COLONIES_[A-Z_]*' || true); do unset "$name"; done
trap 'testnet/down >/dev/null 2>&1 || true' EXIT
testnet/up 3
source testnet/env.sh
TESTNET_NODES="$(awk '{ printf "127.0.0.1:%s ", $2 }' testnet/nodes.txt)"
export TESTNET_NODES
status=0
timeout --kill-after=10 120 "$python" -m pytest -q -p no:cacheprovider tests/python/mesh || status=$?
if [[ $status -ne 0 ]]; then
    for log in testnet/logs/*.log; do echo "--- $log"; tail -20 "$log"; done >&2
fi
exit "$status"
