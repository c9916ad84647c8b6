#!/usr/bin/env bash
# Time to move one shard replica holding SERIES x POINTS samples (default
# 20000 x 500 = 10M) to a new node (issue 4): node 1 starts alone with one
# shard and replication factor 2, `silverback-load` fills it, node 2 joins,
# and the clock runs from node 2's start until the cluster map shows the
# shard on both nodes with no move in flight. Node 2's copy is then checked
# to hold every series, through its /metrics, and its peak RSS (VmHWM) is
# reported: a snapshot is streamed into a file and restored in batches, so
# it should not grow with the shard.
#
#   tests/bench/move.sh
#   SERIES=2000 POINTS=100 tests/bench/move.sh      # a quick one
#   NODE_ARGS="--raft-log-max-bytes 1" tests/bench/move.sh   # by snapshot, not log
#
# Every process this script starts is stopped by PID when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SERIES=${SERIES:-20000}
POINTS=${POINTS:-500}
PORT_BASE=${PORT_BASE:-19100}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN_DIR:-$TARGET/release}
WORK=$(mktemp -d /tmp/silverback-move.XXXXXX)
PIDS=()

log() { printf '%s move.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${BIN_DIR:-} ]]; then
  (cd "$ROOT" && cargo build --release --workspace --bins) >&2
fi

H1=$((PORT_BASE)) G1=$((PORT_BASE + 1)) H2=$((PORT_BASE + 2)) G2=$((PORT_BASE + 3))
node() { # id http grpc extra...
  local id=$1 h=$2 g=$3
  shift 3
  "$BIN/silverback" --node-id "$id" --http-listen "127.0.0.1:$h" --grpc-listen "127.0.0.1:$g" \
    --data-dir "$WORK/n$id" --shards 1 --replication-factor 2 --self-scrape-interval 0 \
    ${NODE_ARGS:-} "$@" \
    >"$WORK/n$id.log" 2>&1 &
  PIDS+=($!)
}
wait_ready() {
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$1/-/ready" >/dev/null && return 0
    sleep 0.1
  done
  log "node on :$1 not ready"; tail -20 "$WORK"/n*.log >&2; exit 1
}

node 1 "$H1" "$G1"
wait_ready "$H1"
log "loading $SERIES series x $POINTS points into node 1"
"$BIN/silverback-load" run --system silverback --title move --url "http://127.0.0.1:$H1" \
  --series "$SERIES" --points "$POINTS" --runs 1 --out "$WORK/load.json" >/dev/null
samples=$(python3 -c "import json;print(json.load(open('$WORK/load.json'))['ingest']['samples'])" 2>/dev/null || echo $((SERIES * POINTS)))

t0=$(date +%s.%N)
node 2 "$H2" "$G2" --join "127.0.0.1:$G1"
log "node 2 joining; waiting for shard 0 to be on both nodes"
for _ in $(seq 6000); do
  if curl -sf "http://127.0.0.1:$H1/api/v1/status/cluster" | python3 -c "
import json,sys
d=json.load(sys.stdin)['data']
s=d['shards'][0]
sys.exit(0 if sorted(s['replicas'])==[1,2] and not d['moves'] else 1)"; then
    break
  fi
  sleep 0.1
done
t1=$(date +%s.%N)
series_on_2=$(curl -sf "http://127.0.0.1:$H2/metrics" |
  awk '$1 == "silverback_storage_series" {print $2}' | head -1)
secs=$(python3 -c "print(f'{$t1-$t0:.1f}')")
hwm2=$(awk '/^VmHWM/ {print $2}' "/proc/${PIDS[1]}/status")
snaps=$(curl -sf "http://127.0.0.1:$H2/metrics" |
  awk '$1 == "silverback_raft_snapshots_installed_total" {print $2}' | head -1)
log "moved a replica of $samples samples in ${secs}s; node 2 holds ${series_on_2:-?} series, peak RSS ${hwm2} KiB, ${snaps:-?} snapshots installed"
echo "{\"samples\": $samples, \"seconds\": $secs, \"series_on_new_node\": \"${series_on_2:-}\", \"new_node_peak_rss_kib\": ${hwm2:-0}, \"snapshots_installed\": \"${snaps:-}\"}"
[[ ${series_on_2:-0} == "$SERIES" ]] || { log "node 2 does not hold every series"; exit 1; }
