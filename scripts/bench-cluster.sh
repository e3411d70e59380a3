#!/usr/bin/env bash
# A Fanfare cluster beside one node, in the same session on this machine:
# a private redis-server on a free port, three `fanfare serve --cluster`
# nodes and one single node (default configuration: the embedded store
# with fsync), all release builds on loopback. Runs, RUNS times each,
# interleaved:
#
#   fanout-throughput  1,000 subscribers, publishing as fast as they keep up
#                      (one node: all on it; cluster: spread over the three,
#                      publishing through node 1); CPU of every Fanfare node
#                      plus Redis
#   fanout-latency     the same at 50 publications/s: publish→deliver p50/p99
#   fanout-rate-N      the same at N publications/s (not in the default set)
#   reconnect-storm    3,000 subscribers cut at once; each reconnects to the
#                      next node (cluster) and resumes from its position
#
# and reads the nodes' /metrics for frames per socket write and, for the
# cluster runs, live frames received (Redis messages per publication) and
# the recent-cache hit rate.
# Writes $OUT_DIR/cluster-YYYY-MM-DD.json (every report) and prints a
# summary. Stops everything it started, by pid. Nothing here asserts.
#
# Usage: scripts/bench-cluster.sh [--runs N] [--duration D] [--out-dir DIR]
#                                 [--scenarios "fanout-throughput fanout-latency"]
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO/docs/bench}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
SCENARIOS=${SCENARIOS:-fanout-throughput fanout-latency reconnect-storm}
API_KEY=bench-cluster-api-key-0123456789
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --out-dir) OUT_DIR=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    *) echo "bench-cluster: unknown option $1" >&2; exit 2 ;;
  esac
done
say() { echo "[bench-cluster $(date -u +%H:%M:%S)] $*" >&2; }

cargo build --release -p fanfare --manifest-path "$REPO/Cargo.toml" >&2
BIN=$REPO/target/release/fanfare
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() { # url
  for _ in $(seq 1 200); do
    curl -fs "$1/ready" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "bench-cluster: $1 never became ready" >&2; return 1
}

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
  --daemonize no --loglevel warning >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!; PIDS+=("$REDIS_PID")
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

start_node() { # name, extra TOML → echoes "pid port"
  local name=$1 extra=$2 port; port=$(free_port)
  mkdir -p "$WORK/$name"
  cat >"$WORK/$name/fanfare.toml" <<EOF
listen = "127.0.0.1:$port"
data_dir = "$WORK/$name"
api_key = "$API_KEY"
log = "warn"
[limits]
max_handshakes_per_second = 0
[auth]
allow_anonymous = true
[channel_defaults]
publish = "server"
$extra
EOF
  "$BIN" serve --config "$WORK/$name/fanfare.toml" >"$WORK/$name/out.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  wait_ready "http://127.0.0.1:$port"
  echo "$pid $port"
}

read -r SINGLE_PID SINGLE_PORT < <(start_node single "")
NODE_PIDS=(); NODE_PORTS=()
for n in 1 2 3; do
  read -r pid port < <(start_node "node$n" "[cluster]
url = \"redis://127.0.0.1:$REDIS_PORT\"")
  NODE_PIDS+=("$pid"); NODE_PORTS+=("$port")
done
say "single node :$SINGLE_PORT; cluster nodes :${NODE_PORTS[*]} on redis :$REDIS_PORT"

metric_sum() { # name-prefix [ports…] → sum over those nodes (default: the three)
  local total=0 value name=$1; shift
  local ports=("$@"); [ ${#ports[@]} -gt 0 ] || ports=("${NODE_PORTS[@]}")
  for port in "${ports[@]}"; do
    value=$(curl -fs "http://127.0.0.1:$port/metrics" | awk -v m="$name" 'index($0, m) == 1 { s += $NF } END { print s + 0 }')
    total=$(python3 -c "print($total + $value)")
  done
  echo "$total"
}

scenario_args() { # scenario
  case $1 in
    fanout-throughput) echo "fanout --connections 1000 --rate 0 --duration $DURATION" ;;
    fanout-latency) echo "fanout --connections 1000 --rate 50 --duration $DURATION" ;;
    fanout-rate-*) echo "fanout --connections 1000 --rate ${1#fanout-rate-} --duration $DURATION" ;;
    reconnect-storm) echo "reconnect-storm --connections 3000 --rate 100 --duration $DURATION --cut-after 3s" ;;
  esac
}

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
  for scenario in $SCENARIOS; do
    for target in single cluster; do
      if [ "$target" = single ]; then
        where=(--url "http://127.0.0.1:$SINGLE_PORT" --server-pid "$SINGLE_PID")
        ports=("$SINGLE_PORT")
      else
        ports=("${NODE_PORTS[@]}")
        pids=$(IFS=,; echo "${NODE_PIDS[*]},$REDIS_PID")
        where=(--url "http://127.0.0.1:${NODE_PORTS[0]}" --server-pid "$pids"
               --cluster "http://127.0.0.1:${NODE_PORTS[1]},http://127.0.0.1:${NODE_PORTS[2]}")
      fi
      frames_before=$(metric_sum fanfare_bus_frames_received_total)
      hits_before=$(metric_sum 'fanfare_cluster_recent_cache_total{outcome="hit"}')
      misses_before=$(metric_sum 'fanfare_cluster_recent_cache_total{outcome="miss"}')
      written_before=$(metric_sum fanfare_ws_frames_written_total "${ports[@]}")
      writes_before=$(metric_sum fanfare_ws_writes_total "${ports[@]}")
      say "run $run: $scenario on $target"
      # shellcheck disable=SC2046
      report=$("$BIN" bench $(scenario_args "$scenario") "${where[@]}" --api-key "$API_KEY" \
        --json --no-progress 2>"$WORK/bench.err") || { say "bench failed: $(tail -3 "$WORK/bench.err")"; continue; }
      frames=$(python3 -c "print($(metric_sum fanfare_bus_frames_received_total) - $frames_before)")
      hits=$(python3 -c "print($(metric_sum 'fanfare_cluster_recent_cache_total{outcome="hit"}') - $hits_before)")
      misses=$(python3 -c "print($(metric_sum 'fanfare_cluster_recent_cache_total{outcome="miss"}') - $misses_before)")
      written=$(python3 -c "print($(metric_sum fanfare_ws_frames_written_total "${ports[@]}") - $written_before)")
      writes=$(python3 -c "print($(metric_sum fanfare_ws_writes_total "${ports[@]}") - $writes_before)")
      printf '%s' "$report" >"$WORK/report.json"
      python3 - "$run" "$scenario" "$target" "$frames" "$hits" "$misses" "$written" "$writes" "$WORK/report.json" <<'EOF' >>"$RESULTS"
import json, sys
run, scenario, target, frames, hits, misses, written, writes, path = sys.argv[1:]
report = json.load(open(path))
print(json.dumps({"run": int(run), "scenario": scenario, "target": target, "bus_frames": float(frames),
                  "cache_hits": float(hits), "cache_misses": float(misses),
                  "frames_written": float(written), "socket_writes": float(writes), "report": report}))
EOF
    done
  done
done

mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/cluster-$(date -u +%Y-%m-%d).json
python3 - "$RESULTS" "$OUT" <<'EOF'
import json, statistics, sys, platform, os
rows = [json.loads(line) for line in open(sys.argv[1])]
def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
summary = {}
for scenario in dict.fromkeys(r["scenario"] for r in rows):
    for target in ["single", "cluster"]:
        runs = [r for r in rows if r["scenario"] == scenario and r["target"] == target]
        if not runs:
            continue
        reports = [r["report"] for r in runs]
        def get(path):
            out = []
            for rep in reports:
                value = rep
                for key in path:
                    value = value.get(key) if isinstance(value, dict) else None
                out.append(value)
            return out
        deliveries = get(["delivery", "delivered"])
        cpu = get(["server", "cpu_seconds"])
        published = get(["publish", "acked"])
        per_cpu = [d / c if d and c else None for d, c in zip(deliveries, cpu)]
        frames_per_pub = [r["bus_frames"] / p if p else None for r, p in zip(runs, published)]
        hits = sum(r["cache_hits"] for r in runs); misses = sum(r["cache_misses"] for r in runs)
        per_write = [r["frames_written"] / r["socket_writes"] if r.get("socket_writes") else None for r in runs]
        summary[f"{scenario}/{target}"] = {
            "runs": len(runs),
            "deliveries_per_server_cpu_second": median(per_cpu),
            "p50_ms": median([v / 1000 if v is not None else None for v in get(["delivery", "latency", "p50_us"])]),
            "p99_ms": median([v / 1000 if v is not None else None for v in get(["delivery", "latency", "p99_us"])]),
            "all_recovered_after_ms": median(get(["recovery", "all_recovered_after_ms"])),
            "recovered_false": sum(x or 0 for x in get(["recovery", "recovered_false"])),
            "lost": sum(x or 0 for x in get(["delivery", "lost"])),
            "duplicated": sum(x or 0 for x in get(["delivery", "duplicated"])),
            "bus_frames_per_publication": median(frames_per_pub) if target == "cluster" else None,
            "frames_per_socket_write": median(per_write),
            "recent_cache_hit_rate": hits / (hits + misses) if hits + misses else None,
        }
machine = {"cpus": os.cpu_count(), "kernel": platform.release()}
json.dump({"machine": machine, "summary": summary, "runs": rows}, open(sys.argv[2], "w"), indent=1)
for key, value in summary.items():
    print(key, json.dumps(value))
EOF
say "wrote $OUT"
