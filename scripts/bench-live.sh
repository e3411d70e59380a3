#!/usr/bin/env bash
# The live-event benchmark (issue 12): one huge room, with huge-room
# shaping on and off, in the same session on this machine.
#
# For each of "shaping on" and "shaping off" it starts a fresh release
# build of `fanfare serve` on a free loopback port, with a configuration it
# writes (a `live` namespace where viewers may publish and react, a JWT
# secret, an HTTP API key, limits raised for the load; with shaping on, a
# `[namespaces.live.shaping]` table), runs
#
#   fanfare bench live   VIEWERS viewers on live:stage over WORKERS worker
#                        processes, COMMENT_RATE comments/s from PUBLISHERS
#                        connections, REACTION_RATE reactions/s from the
#                        viewers, one priority publication per
#                        PRIORITY_INTERVAL through the HTTP API, DURATION
#
# with the same load both times, stops the server (by its pid), and writes
# $OUT_DIR/live-YYYY-MM-DD[-LABEL].json (both reports, the machine, the
# load average, the settings) and a summary on stdout. Nothing here is an
# assertion: the run without shaping is expected to be beyond the machine,
# and its report says how far (the tool then exits non-zero; the report is
# kept).
#
# Usage: scripts/bench-live.sh [options]
#   --quick             1,000 viewers, 1 worker, 10 s: tries the script in a minute
#   --viewers N         (env VIEWERS, default 15000)
#   --workers K         tool processes holding the viewers (env WORKERS, default 3)
#   --comment-rate R    comments per second (env COMMENT_RATE, default 500)
#   --reaction-rate R   reactions per second (env REACTION_RATE, default 2000)
#   --budget N          shaping budget per viewer per second (env BUDGET, default 20)
#   --duration D        publishing time per run (env DURATION, default 30s)
#   --only on|off       run one of the two
#   --out-dir DIR       (env OUT_DIR, default docs/bench)
#   --label NAME        live-YYYY-MM-DD-NAME.json (env LABEL)
#   --bin PATH          a fanfare binary to use instead of building one (env BIN)
#
# Needs: bash, python3, curl, cargo (unless --bin).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO/docs/bench}
VIEWERS=${VIEWERS:-15000}
WORKERS=${WORKERS:-3}
COMMENT_RATE=${COMMENT_RATE:-500}
REACTION_RATE=${REACTION_RATE:-2000}
BUDGET=${BUDGET:-20}
PRIORITY_INTERVAL=${PRIORITY_INTERVAL:-1s}
DURATION=${DURATION:-30s}
PUBLISHERS=${PUBLISHERS:-10}
SOURCE_ADDRS=${SOURCE_ADDRS:-127.0.0.2,127.0.0.3,127.0.0.4}
RUN_TIMEOUT=${RUN_TIMEOUT:-420}   # seconds: the bench's own --timeout; killed 30 s later
LABEL=${LABEL:-}
BATCH=${BATCH:-}                  # the shaping table's batch (e.g. 0s); unset: the server's default (250ms)
BIN=${BIN:-}
MODES="on off"
API_KEY=bench-live-api-key-0123456789
JWT_SECRET=bench-live-jwt-secret-of-32-bytes-or-more

die() { echo "bench-live: $*" >&2; exit 1; }
say() { echo "[bench-live $(date -u +%H:%M:%S)] $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --quick) VIEWERS=1000; WORKERS=1; DURATION=10s; shift ;;
    --viewers) VIEWERS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --comment-rate) COMMENT_RATE=$2; shift 2 ;;
    --reaction-rate) REACTION_RATE=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --only) MODES=$2; shift 2 ;;
    --out-dir) OUT_DIR=$2; shift 2 ;;
    --label) LABEL=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for mode in $MODES; do
  case $mode in on|off) ;; *) die "--only takes on or off, not $mode" ;; esac
done

if [ -z "$BIN" ]; then
  cargo build --release -p fanfare --manifest-path "$REPO/Cargo.toml" >&2
  BIN=$REPO/target/release/fanfare
fi
[ -x "$BIN" ] || die "no fanfare binary at $BIN"
# Viewers and the server each hold a socket per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() { # url
  for _ in $(seq 1 200); do
    curl -fs "$1/ready" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  die "$1 never became ready"
}

start_server() { # mode → sets SERVER_PID, PORT
  local mode=$1 shaping=""
  PORT=$(free_port)
  mkdir -p "$WORK/$mode"
  if [ "$mode" = on ]; then
    shaping="[namespaces.live.shaping]
budget = $BUDGET
window = \"1s\"
reactions = \"250ms\""
    if [ -n "$BATCH" ]; then shaping="$shaping
batch = \"$BATCH\""; fi
  fi
  cat >"$WORK/$mode/fanfare.toml" <<EOF
listen = "127.0.0.1:$PORT"
data_dir = "$WORK/$mode"
api_key = "$API_KEY"
log = "warn"
[limits]
max_handshakes_per_second = 0
max_handshakes_per_ip_per_second = 0
max_connections_per_ip = 0
max_commands_per_second = 1000
[auth]
allow_anonymous = false
jwt_algorithm = "HS256"
jwt_secret = "$JWT_SECRET"
[namespaces.live]
publish = "anyone"
durability = "buffered"
$shaping
EOF
  "$BIN" serve --config "$WORK/$mode/fanfare.toml" >"$WORK/$mode/out.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$PORT"
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
for mode in $MODES; do
  start_server "$mode"
  say "shaping $mode: $VIEWERS viewers ($WORKERS workers), $COMMENT_RATE comments/s, $REACTION_RATE reactions/s, priority every $PRIORITY_INTERVAL, $DURATION; server pid $SERVER_PID on :$PORT"
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  status=0
  timeout $((RUN_TIMEOUT + 30)) "$BIN" bench live --url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
    --api-key "$API_KEY" --jwt-secret "$JWT_SECRET" \
    --connections "$VIEWERS" --workers "$WORKERS" --source-addrs "$SOURCE_ADDRS" \
    --comment-rate "$COMMENT_RATE" --publishers "$PUBLISHERS" --reaction-rate "$REACTION_RATE" \
    --priority-interval "$PRIORITY_INTERVAL" --duration "$DURATION" \
    --drain-timeout 30s --timeout "${RUN_TIMEOUT}s" --json --no-progress \
    >"$WORK/report.json" 2>"$WORK/bench.err" || status=$?
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  if [ "$status" -ne 0 ]; then say "shaping $mode: the tool exited $status: $(tail -2 "$WORK/bench.err")"; fi
  stop_server
  python3 - "$mode" "$status" "$load_before" "$load_after" "$WORK/report.json" "$WORK/bench.err" <<'EOF' >>"$RESULTS"
import json, sys
mode, status, before, after, path, err = sys.argv[1:]
try:
    report = json.load(open(path))
except ValueError:
    report = None
print(json.dumps({"shaping": mode, "exit_status": int(status), "loadavg_before": before,
                  "loadavg_after": after, "report": report,
                  "stderr_tail": open(err).read()[-2000:] if report is None else ""}))
EOF
done

mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/live-$(date -u +%Y-%m-%d)${LABEL:+-$LABEL}.json
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
python3 - "$RESULTS" "$OUT" "$COMMIT" "$VIEWERS" "$WORKERS" "$COMMENT_RATE" "$REACTION_RATE" "$BUDGET" \
  "$PRIORITY_INTERVAL" "$DURATION" "$PUBLISHERS" <<'EOF'
import json, sys, platform, os, datetime
path, out, commit, viewers, workers, comments, reactions, budget, interval, duration, publishers = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]
summary = {}
for row in rows:
    live = (row["report"] or {}).get("live")
    server = (row["report"] or {}).get("server") or {}
    if not live:
        summary[row["shaping"]] = {"failed": row["stderr_tail"][-300:]}
        continue
    p, o, r = live["priority"], live["ordinary"], live["reactions"]
    summary[row["shaping"]] = {
        "viewers": live["viewers"],
        "deliveries_per_second": round(live["deliveries_per_second"]),
        "deliveries_per_server_cpu_second": live["deliveries_per_server_cpu_second"] and round(live["deliveries_per_server_cpu_second"]),
        "server_cores": live["server_cores"] and round(live["server_cores"], 2),
        "server_rss_mib": server.get("rss_after_kib") and round(server["rss_after_kib"] / 1024, 1),
        "priority_sent": p["sent"], "priority_lost": p["lost"],
        "priority_received_by_every_viewer": p["received_by_every_viewer"],
        "priority_p50_ms": p["latency"]["p50_us"] / 1000, "priority_p99_ms": p["latency"]["p99_us"] / 1000,
        "priority_max_ms": p["latency"]["max_us"] / 1000,
        "comments_published": o["published"],
        "comments_per_viewer_per_second_mean": round(o["per_viewer_per_second_mean"], 1),
        "comments_per_viewer_per_second_max": round(o["per_viewer_per_second_max"], 1),
        "delivered_plus_skipped_adds_up": o["adds_up"], "unreported": o["unreported"],
        "reactions_sent": r["sent"], "reactions_refused": r["refused"],
        "reactions_counted_per_viewer_min": r["received_per_viewer_min"],
        "reactions_counted_per_viewer_max": r["received_per_viewer_max"],
        "reconnects": live["reconnects"], "caught_up": live["caught_up"],
        "errors": {k: v["count"] for k, v in row["report"]["errors"].items()},
    }
machine = {"cpus": os.cpu_count(), "kernel": platform.release(),
           "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
settings = {"viewers": int(viewers), "workers": int(workers), "comment_rate": float(comments),
            "reaction_rate": float(reactions), "budget": int(budget), "priority_interval": interval,
            "duration": duration, "publishers": int(publishers)}
doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
       "machine": machine, "settings": settings, "summary": summary, "runs": rows}
json.dump(doc, open(out, "w"), indent=1)
for mode, values in summary.items():
    print(f"shaping {mode}:", json.dumps(values))
EOF
say "wrote $OUT"
