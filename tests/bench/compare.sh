#!/usr/bin/env bash
# Side-by-side benchmark: Prometheus, VictoriaMetrics, Silverback (1 node)
# and Silverback (3 nodes, replication factor 3), one after the other on
# this machine, each fresh on 127.0.0.1 with an empty data dir, all fed the
# same data by `silverback-load`. Writes BENCHMARKS.md at the repo root.
#
#   tests/bench/compare.sh                      # the full run
#   SERIES=5000 POINTS=100 OUT=/tmp/b.md tests/bench/compare.sh   # a quick one
#   SERIES=1000000 POINTS=8 RUNS=5 OUT=BENCHMARKS-1m.md tests/bench/compare.sh
#                                               # the index-heavy case: 1M series,
#                                               # mostly series creation (pod churn)
#
# The report's targets follow the run's shape: RSS per series ≤ 0.5 KiB at
# 1M series (≤ VictoriaMetrics' below), ≥ 100 k new series/s when a series
# has ≤ 16 points, whole data dir ≤ 2.0 bytes/sample when it has ≥ 100
# (≤ VictoriaMetrics' below).
#
# Settings (environment): SERIES (30000: about 7 min for all four on the
# 2-core build machine; the tool's own default, 50000, took 18 min there
# while other builds ran, over the 15 min this comparison should take),
# POINTS (504: 2 h 6 m at 15 s, so every point of the 2 h range queries has
# a full 5 m window), CONCURRENCY (24 requests
# in flight, as a Prometheus sender with many shards keeps; Silverback acks a
# write after a Raft commit, so it needs concurrency to use the CPU),
# PER_REQUEST (2000 samples), RUNS (10 timed runs
# per query), SYSTEMS (which to run, in column order), OUT (BENCHMARKS.md),
# KEEP=1 keeps the work dir, PORT_BASE (19000: ports PORT_BASE+0..+9),
# BIN_DIR (use silverback and silverback-load from there; no build), REV
# (the commit those binaries were built from, for the report).
#
# Every process this script starts is stopped by PID when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SERIES=${SERIES:-30000}
POINTS=${POINTS:-504}
CONCURRENCY=${CONCURRENCY:-24}
PER_REQUEST=${PER_REQUEST:-2000}
RUNS=${RUNS:-10}
SYSTEMS=${SYSTEMS:-"prometheus victoriametrics silverback silverback-3"}
OUT=${OUT:-$ROOT/BENCHMARKS.md}
PORT_BASE=${PORT_BASE:-19000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN_DIR=${BIN_DIR:-}
LOAD=${BIN_DIR:-$TARGET/release}/silverback-load
SILVERBACK=${BIN_DIR:-$TARGET/release}/silverback
CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/silverback-bench.XXXXXX)
START_S=$SECONDS
PIDS=()

log() { printf '%s compare.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [[ ${KEEP:-0} == 1 ]]; then
    log "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one process by PID (SIGTERM, then waits up to 120 s) and forgets it.
stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "PID $pid did not stop within 120 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_http() { # url, pid, what
  local i
  for i in $(seq 1200); do
    if curl -sf -o /dev/null "$1"; then return 0; fi
    kill -0 "$2" 2>/dev/null || { log "$3 exited before it was ready"; return 1; }
    sleep 0.1
  done
  log "$3 not ready after 120 s"
  return 1
}

bytes_of() { du -sb "$@" | awk '{s += $1} END {print s + 0}'; }

# Waits until the size of the given paths stops changing (2 s apart), at
# most 120 s.
wait_stable_size() {
  local a b i
  a=$(bytes_of "$@")
  for i in $(seq 60); do
    sleep 2
    b=$(bytes_of "$@")
    [[ $a == "$b" ]] && return 0
    a=$b
  done
}

need() { # command, Debian package
  if ! command -v "$1" >/dev/null; then
    log "installing $2"
    local sudo=
    [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get install -y "$2" >&2 || $sudo sh -c "apt-get update && apt-get install -y $2" >&2
  fi
  command -v "$1" >/dev/null || { log "cannot find or install $1 ($2)"; exit 1; }
}

for p in $(seq "$PORT_BASE" $((PORT_BASE + 9))); do
  port_free "$p" || { log "port $p is in use; set PORT_BASE"; exit 1; }
done
PROM_PORT=$PORT_BASE
VM_PORT=$((PORT_BASE + 1))
SB_HTTP=$((PORT_BASE + 2)) # +2..+4
SB_GRPC=$((PORT_BASE + 5)) # +5..+7

for s in $SYSTEMS; do
  case $s in
  prometheus) need prometheus prometheus ;;
  victoriametrics) need victoria-metrics victoria-metrics ;;
  silverback | silverback-3) ;;
  *) log "unknown system $s"; exit 1 ;;
  esac
done
if [[ -z $BIN_DIR ]]; then
  log "building (cargo build --release --workspace --bins)"
  (cd "$ROOT" && cargo build --release --workspace --bins --quiet)
  REV=${REV:-$(git -C "$ROOT" rev-parse --short HEAD)}
  if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no) ]]; then
    REV="$REV with uncommitted changes"
  fi
fi
REV=${REV:-unknown}
if [[ -z $BIN_DIR ]]; then
  PROFILE_NOTE="release profile"
else
  PROFILE_NOTE="binaries from BIN_DIR=$BIN_DIR"
fi

# The same data for every system. The last sample is 7 s before a whole
# minute; queries run at whole minutes, so no sample sits on a [5m] window's
# edge (where Prometheus 2's left-closed and 3's left-open windows differ).
END_MS=$(($(date +%s) / 60 * 60000 - 7000))
COMMON=(--series "$SERIES" --points "$POINTS" --end-ms "$END_MS" --per-request "$PER_REQUEST"
  --concurrency "$CONCURRENCY" --runs "$RUNS" --clk-tck "$CLK_TCK")
RESULTS=()

run_prometheus() {
  local dir=$WORK/prometheus
  mkdir -p "$dir/data"
  printf 'global:\n  scrape_interval: 15s\n' >"$dir/prometheus.yml"
  local cmd=(prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data"
    --web.listen-address=127.0.0.1:$PROM_PORT --web.enable-remote-write-receiver --web.enable-admin-api)
  "${cmd[@]}" >"$dir/log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_http "http://127.0.0.1:$PROM_PORT/-/ready" "$pid" prometheus
  local version
  version=$(prometheus --version 2>&1 | head -1 | awk '{print $3}')
  "$LOAD" run --system prometheus --title "Prometheus ${version%%+*}" \
    --url "http://127.0.0.1:$PROM_PORT" --pid "$pid" \
    --command "${cmd[*]//$WORK/\$WORK}" "${COMMON[@]}" --out "$WORK/prometheus.json"
  # A snapshot writes the head (everything here: the data spans < 3 h, so no
  # block was cut yet) as one compacted block: what Prometheus keeps on disk
  # once the head is compacted and the WAL truncated.
  local snap
  snap=$(curl -sf -XPOST "http://127.0.0.1:$PROM_PORT/api/v1/admin/tsdb/snapshot" |
    sed -n 's/.*"name":"\([^"]*\)".*/\1/p')
  [[ -n $snap ]] || { log "prometheus snapshot failed"; exit 1; }
  local bytes total
  bytes=$(bytes_of "$dir/data/snapshots/$snap")
  total=$(du -sb --exclude=snapshots "$dir/data" | awk '{print $1}')
  "$LOAD" set-disk --result "$WORK/prometheus.json" --bytes "$bytes" --total-bytes "$total" \
    --how "du -sb of a TSDB snapshot (POST /api/v1/admin/tsdb/snapshot: the head written as one compacted block: chunks + index); whole data dir: the running TSDB's WAL and head chunks, without the snapshot"
  stop "$pid"
  RESULTS+=("$WORK/prometheus.json")
}

run_victoriametrics() {
  local dir=$WORK/victoriametrics
  mkdir -p "$dir"
  local cmd=(victoria-metrics -storageDataPath="$dir/data" -httpListenAddr=127.0.0.1:$VM_PORT
    -retentionPeriod=1y -search.disableCache -search.latencyOffset=0s)
  "${cmd[@]}" >"$dir/log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_http "http://127.0.0.1:$VM_PORT/health" "$pid" victoria-metrics
  local version
  version=$(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo unknown)
  "$LOAD" run --system victoriametrics --title "VictoriaMetrics ${version%%+*}" \
    --url "http://127.0.0.1:$VM_PORT" --pid "$pid" \
    --flush-url "http://127.0.0.1:$VM_PORT/internal/force_flush" \
    --command "${cmd[*]//$WORK/\$WORK}" "${COMMON[@]}" --out "$WORK/victoriametrics.json"
  curl -sf "http://127.0.0.1:$VM_PORT/internal/force_flush" >/dev/null
  curl -sf "http://127.0.0.1:$VM_PORT/internal/force_merge?partition_prefix=$(date -u -d @$((END_MS / 1000)) +%Y_%m)" >/dev/null
  wait_stable_size "$dir/data"
  stop "$pid"
  local bytes total
  bytes=$(bytes_of "$dir/data/data" "$dir/data/indexdb")
  total=$(bytes_of "$dir/data")
  "$LOAD" set-disk --result "$WORK/victoriametrics.json" --bytes "$bytes" --total-bytes "$total" \
    --how "du -sb of data/ and indexdb/ after /internal/force_flush, /internal/force_merge of the month's partition, waiting until the size stopped changing, and a graceful stop (SIGTERM)"
  RESULTS+=("$WORK/victoriametrics.json")
}

# The command line of Silverback node $1 of $2 (data under $WORK/$3-$1).
sb_cmd() {
  local i=$1 n=$2 key=$3 peers="" j
  for j in $(seq "$n"); do
    peers+="${peers:+,}$j=127.0.0.1:$((SB_GRPC + j - 1))"
  done
  SB_CMD=("$SILVERBACK" --node-id "$i" --data-dir "$WORK/$key-$i/data"
    --http-listen 127.0.0.1:$((SB_HTTP + i - 1)) --grpc-listen 127.0.0.1:$((SB_GRPC + i - 1))
    --self-scrape-interval 0)
  if [[ $n -gt 1 ]]; then SB_CMD+=(--peers "$peers" --replication-factor 3); fi
}

# Starts nodes 1..$1 of $2 and waits until every one is ready; PIDs in SB_PIDS.
sb_start() {
  local n=$1 key=$2 i
  SB_PIDS=()
  for i in $(seq "$n"); do
    sb_cmd "$i" "$n" "$key"
    mkdir -p "$WORK/$key-$i"
    "${SB_CMD[@]}" >>"$WORK/$key-$i/log" 2>&1 &
    SB_PIDS+=($!)
    PIDS+=($!)
  done
  for i in $(seq "$n"); do
    wait_http "http://127.0.0.1:$((SB_HTTP + i - 1))/-/ready" "${SB_PIDS[$((i - 1))]}" "silverback node $i"
  done
}

run_silverback() { # nodes
  local n=$1 key=silverback title="Silverback $("$SILVERBACK" --version | awk '{print $2}')"
  if [[ $n -gt 1 ]]; then
    key=silverback-3
    title="$title, 3 nodes RF 3"
  else
    title="$title, 1 node"
  fi
  local urls=() cmds=() dirs=() pidargs=() i p
  for i in $(seq "$n"); do
    sb_cmd "$i" "$n" "$key"
    local shown="${SB_CMD[*]//$WORK/\$WORK}"
    cmds+=(--command "${shown/#$SILVERBACK/target/release/silverback}")
    urls+=(--url "http://127.0.0.1:$((SB_HTTP + i - 1))")
    dirs+=(--rocksdb "$WORK/$key-$i/data")
  done
  sb_start "$n" "$key"
  for p in "${SB_PIDS[@]}"; do pidargs+=(--pid "$p"); done
  "$LOAD" run --system "$key" --title "$title" "${urls[@]}" "${pidargs[@]}" "${cmds[@]}" \
    "${COMMON[@]}" --out "$WORK/$key.json"
  for p in "${SB_PIDS[@]}"; do stop "$p"; done
  # Silverback has no flush endpoint. A graceful stop checkpoints every
  # shard into RocksDB, whose memtables then live only in its WAL; opening
  # the DB again writes them out as SST files (RocksDB's recovery flush),
  # so the second stop leaves the data in SSTs.
  sb_start "$n" "$key"
  for p in "${SB_PIDS[@]}"; do stop "$p"; done
  "$LOAD" set-disk --result "$WORK/$key.json" "${dirs[@]}" \
    --how "graceful stop (SIGTERM: every shard checkpointed), start again (RocksDB flushes what its WAL holds into SST files on open), graceful stop; then the SST files' bytes by column family (read from each file's properties). Stored data: series, postings, chunks and state-machine families; not counted there: the Raft log and its metadata (Silverback's write-ahead log), RocksDB's WAL, manifest and info logs. No manual RocksDB compaction ran (there is no endpoint for one)"
  RESULTS+=("$WORK/$key.json")
}

for s in $SYSTEMS; do
  log "=== $s ==="
  case $s in
  prometheus) run_prometheus ;;
  victoriametrics) run_victoriametrics ;;
  silverback) run_silverback 1 ;;
  silverback-3) run_silverback 3 ;;
  esac
done

ELAPSED=$((SECONDS - START_S))
"$LOAD" report "${RESULTS[@]}" --out "$OUT" --date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  --elapsed-s "$ELAPSED" \
  --command "SERIES=$SERIES POINTS=$POINTS CONCURRENCY=$CONCURRENCY PER_REQUEST=$PER_REQUEST RUNS=$RUNS tests/bench/compare.sh" \
  --note "The systems run one after the other on the same 2 cores as the load tool (its HTTP client competes with the server for CPU), on a machine shared with other work: expect run-to-run noise of 10–20% in rates and latencies." \
  --note "Silverback runs with --self-scrape-interval 0 (Prometheus has no scrape jobs and VictoriaMetrics does not scrape itself), the default 32 shards, and its default retention; VictoriaMetrics with -search.disableCache so repeated queries are evaluated, not served from its rollup cache." \
  --note "The 3-node cluster receives the writes round-robin on all three nodes; queries go to node 1." \
  --note "Silverback built from commit $REV ($PROFILE_NOTE)."
log "wrote $OUT in $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
