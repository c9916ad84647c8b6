#!/usr/bin/env bash
# Where a node's memory goes: starts one Silverback node with an empty
# data dir on 127.0.0.1, feeds it SERIES x POINTS with silverback-load (its
# query set runs once), waits through a periodic checkpoint, then sends
# each dashboard query once with curl, resetting the peak RSS before each
# (/proc/<pid>/clear_refs), and prints RSS and peak RSS at each stage and
# per query, and the RSS every half second.
#
#   BIN_DIR=target/release tests/bench/query-memory.sh
#   SERIES=1000000 POINTS=8 BIN_DIR=... tests/bench/query-memory.sh
#
# Settings: BIN_DIR (silverback and silverback-load; default
# $CARGO_TARGET_DIR/release), SERIES (1000000), POINTS (8), PORT (19500:
# HTTP; PORT+1: gRPC), IDLE_S (35: longer than the 30 s checkpoint
# interval). The node is stopped by PID when the script exits.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
SERIES=${SERIES:-1000000}
POINTS=${POINTS:-8}
PORT=${PORT:-19500}
IDLE_S=${IDLE_S:-35}
WORK=$(mktemp -d /tmp/silverback-mem.XXXXXX)
PID=

cleanup() {
  if [[ -n $PID ]]; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$PID/status"; }
mib() { echo "$(( $(kib "$1") / 1024 )) MiB"; }

"$BIN_DIR/silverback" --data-dir "$WORK/data" --http-listen "127.0.0.1:$PORT" \
  --grpc-listen "127.0.0.1:$((PORT + 1))" >"$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/-/ready" >/dev/null && break
  sleep 0.2
done
( while kill -0 "$PID" 2>/dev/null; do kib VmRSS; sleep 0.5; done ) >"$WORK/rss" 2>/dev/null &

END_MS=$(( ($(date +%s) / 60 * 60 - 7) * 1000 ))
S=$((END_MS / 1000))
echo "idle: RSS $(mib VmRSS)"
"$BIN_DIR/silverback-load" run --system silverback --title silverback \
  --url "http://127.0.0.1:$PORT" --pid "$PID" --series "$SERIES" --points "$POINTS" \
  --runs 1 --end-ms "$END_MS" --out "$WORK/load.json" 2>&1 | grep -E "ingested|ms$" || true
echo "after ingest and one run of the query set: RSS $(mib VmRSS), peak $(mib VmHWM)"
sleep "$IDLE_S"
echo "after ${IDLE_S} s idle (a periodic checkpoint): RSS $(mib VmRSS), peak $(mib VmHWM)"

U=http://127.0.0.1:$PORT/api/v1
# q NAME CURL-ARGS...: one query; prints the peak RSS it added.
q() {
  local name=$1 before ms
  shift
  echo 5 >"/proc/$PID/clear_refs"
  before=$(kib VmRSS)
  ms=$(curl -s -o /dev/null -w '%{time_total}' "$@")
  echo "  $(( $(kib VmHWM) / 1024 - before / 1024 )) MiB over $(( before / 1024 )) MiB, ${ms} s: $name"
}
R=(--data-urlencode "start=$((S - 7200))" --data-urlencode "end=$S" --data-urlencode step=60)
echo "peak RSS added by each query (one run each):"
for e in 'sum(rate(http_requests_total[5m]))' \
  'sum by (instance) (rate(http_requests_total[5m]))' \
  'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))' \
  'max by (instance) (node_memory_active_bytes)'; do
  q "instant $e" "$U/query" --data-urlencode "time=$S" --data-urlencode "query=$e"
  q "range 2h $e" "$U/query_range" "${R[@]}" --data-urlencode "query=$e"
done
q "label/instance/values" "$U/label/instance/values"
q "labels" "$U/labels"
q "series" "$U/series" --data-urlencode 'match[]=http_requests_total{instance="host-007:9100"}'
q "status/tsdb" "$U/status/tsdb"
echo "RSS every 0.5 s, MiB:"
awk '{printf "%d ", $1 / 1024} END {print ""}' "$WORK/rss"
