#!/usr/bin/env bash
# The messenger benchmark (issue 13): many users, many two-member direct
# channels, each user subscribed to its feed only; and, as the baseline,
# the same publication rate on plain channels, one subscriber each.
#
# For each durability (fsync, the default configuration; buffered with
# --durability both) it starts a fresh release build of `fanfare serve` on
# a free loopback port (a new data directory, the embedded store, a JWT
# secret, an HTTP API key, connection limits lifted for the load), runs
#
#   fanfare bench dm     CHANNELS direct channels (one message each through
#                        the HTTP API), USERS users over WORKERS worker
#                        processes on their feeds, RATE messages/s from the
#                        users for DURATION, then unread + reads
#
# and, on another fresh server of the same durability,
#
#   fanfare bench rooms  USERS subscribers on USERS plain channels (one
#                        each: one delivery per publication, as a notice
#                        is), RATE publications/s from PUBLISHERS
#                        connections for DURATION
#
# stops each server (by its pid), and writes
# $OUT_DIR/dm-YYYY-MM-DD[-LABEL].json (every report, the machine, the load
# average, the settings) and a summary on stdout.
#
# Usage: scripts/bench-dm.sh [options]
#   --quick             1,000 users, 10,000 channels, 1 worker, 200/s, 10 s
#   --users N           (env USERS, default 10000)
#   --channels N        direct channels (env CHANNELS, default 100000)
#   --workers K         tool processes holding the users (env WORKERS, default 3)
#   --rate R            messages per second (env RATE, default 2000)
#   --duration D        (env DURATION, default 20s)
#   --durability fsync|buffered|both   (env DURABILITY, default fsync)
#   --no-baseline       skip the plain-channel runs
#   --history-off       history_size = 0 in dm and feed: publications keep
#                       their offsets but nothing is kept, so the memory
#                       per channel is what a channel costs beyond its
#                       history (env HISTORY=off)
#   --out-dir DIR       (env OUT_DIR, default docs/bench)
#   --label NAME        dm-YYYY-MM-DD-NAME.json (env LABEL)
#   --bin PATH          a fanfare binary to use instead of building one (env BIN)
#
# Needs: bash, python3, curl, cargo (unless --bin).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO/docs/bench}
USERS=${USERS:-10000}
CHANNELS=${CHANNELS:-100000}
WORKERS=${WORKERS:-3}
RATE=${RATE:-2000}
DURATION=${DURATION:-20s}
DURABILITY=${DURABILITY:-fsync}
PUBLISHERS=${PUBLISHERS:-8}
BASELINE=${BASELINE:-yes}
HISTORY=${HISTORY:-on}
SOURCE_ADDRS=${SOURCE_ADDRS:-127.0.0.2,127.0.0.3,127.0.0.4}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}   # seconds: the bench's own --timeout; killed 30 s later
LABEL=${LABEL:-}
BIN=${BIN:-}
API_KEY=bench-dm-api-key-0123456789
JWT_SECRET=bench-dm-jwt-secret-of-32-bytes-or-more

die() { echo "bench-dm: $*" >&2; exit 1; }
say() { echo "[bench-dm $(date -u +%H:%M:%S)] $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --quick) USERS=1000; CHANNELS=10000; WORKERS=1; RATE=200; DURATION=10s; shift ;;
    --users) USERS=$2; shift 2 ;;
    --channels) CHANNELS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --durability) DURABILITY=$2; shift 2 ;;
    --no-baseline) BASELINE=no; shift ;;
    --history-off) HISTORY=off; shift ;;
    --out-dir) OUT_DIR=$2; shift 2 ;;
    --label) LABEL=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case $DURABILITY in
  fsync|buffered) MODES=$DURABILITY ;;
  both) MODES="fsync buffered" ;;
  *) die "--durability takes fsync, buffered or both, not $DURABILITY" ;;
esac

if [ -z "$BIN" ]; then
  cargo build --release -p fanfare --manifest-path "$REPO/Cargo.toml" >&2
  BIN=$REPO/target/release/fanfare
fi
[ -x "$BIN" ] || die "no fanfare binary at $BIN"
# Users and the server each hold a socket per connection.
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

start_server() { # name durability → sets SERVER_PID, PORT
  local name=$1 durability=$2 history=""
  PORT=$(free_port)
  if [ "$HISTORY" = off ]; then history="[namespaces.dm]
history_size = 0
[namespaces.feed]
history_size = 0"; fi
  mkdir -p "$WORK/$name"
  cat >"$WORK/$name/fanfare.toml" <<EOF
listen = "127.0.0.1:$PORT"
data_dir = "$WORK/$name"
api_key = "$API_KEY"
log = "warn"
[store]
durability = "$durability"
[limits]
max_handshakes_per_second = 0
max_handshakes_per_ip_per_second = 0
max_connections_per_ip = 0
max_commands_per_second = 1000
[auth]
allow_anonymous = false
jwt_algorithm = "HS256"
jwt_secret = "$JWT_SECRET"
[namespaces.plain]
publish = "anyone"
$history
EOF
  "$BIN" serve --config "$WORK/$name/fanfare.toml" >"$WORK/$name/out.log" 2>&1 &
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
run_one() { # kind durability → appends a row to $RESULTS
  local kind=$1 durability=$2 status=0
  start_server "$kind-$durability" "$durability"
  say "$kind, $durability: $USERS users ($WORKERS workers), $CHANNELS channels, $RATE/s, $DURATION; server pid $SERVER_PID on :$PORT"
  local load_before load_after
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  local common=(--url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" --api-key "$API_KEY"
    --jwt-secret "$JWT_SECRET" --connections "$USERS" --workers "$WORKERS" --source-addrs "$SOURCE_ADDRS"
    --rate "$RATE" --duration "$DURATION" --drain-timeout 60s --timeout "${RUN_TIMEOUT}s" --json --no-progress)
  if [ "$kind" = dm ]; then
    timeout $((RUN_TIMEOUT + 30)) "$BIN" bench dm "${common[@]}" --channels "$CHANNELS" \
      >"$WORK/report.json" 2>"$WORK/bench.err" || status=$?
  else
    timeout $((RUN_TIMEOUT + 30)) "$BIN" bench rooms "${common[@]}" --channels "$USERS" \
      --channel-prefix plain: --publish-from clients --publishers "$PUBLISHERS" --in-flight 256 \
      >"$WORK/report.json" 2>"$WORK/bench.err" || status=$?
  fi
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  if [ "$status" -ne 0 ]; then say "$kind, $durability: the tool exited $status: $(tail -2 "$WORK/bench.err")"; fi
  local data_kib
  data_kib=$(du -sk "$WORK/$kind-$durability" | cut -f1)
  stop_server
  python3 - "$kind" "$durability" "$status" "$load_before" "$load_after" "$data_kib" "$WORK/report.json" "$WORK/bench.err" <<'EOF' >>"$RESULTS"
import json, sys
kind, durability, status, before, after, data_kib, path, err = sys.argv[1:]
try:
    report = json.load(open(path))
except ValueError:
    report = None
print(json.dumps({"kind": kind, "durability": durability, "exit_status": int(status),
                  "loadavg_before": before, "loadavg_after": after, "data_dir_kib": int(data_kib),
                  "report": report, "stderr_tail": open(err).read()[-2000:] if report is None else ""}))
EOF
}

for durability in $MODES; do
  run_one dm "$durability"
  if [ "$BASELINE" = yes ]; then run_one baseline "$durability"; fi
done

mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/dm-$(date -u +%Y-%m-%d)${LABEL:+-$LABEL}.json
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
HISTORY=$HISTORY python3 - "$RESULTS" "$OUT" "$COMMIT" "$USERS" "$CHANNELS" "$WORKERS" "$RATE" "$DURATION" "$PUBLISHERS" <<'EOF'
import json, sys, platform, os, datetime
path, out, commit, users, channels, workers, rate, duration, publishers = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]
ms = lambda us: round(us / 1000, 2)
summary = {}
for row in rows:
    key = f'{row["kind"]}-{row["durability"]}'
    report = row["report"] or {}
    if row["kind"] == "dm" and report.get("dm"):
        dm = report["dm"]; c, m, r = dm["channels"], dm["messages"], dm["catch_up"]
        summary[key] = {
            "users": dm["users"], "channels": c["created"], "channels_per_user": c["per_user"],
            "channels_created_per_second": round(c["created_per_second"]),
            "server_rss_per_channel_bytes": c["server_rss_per_channel_bytes"] and round(c["server_rss_per_channel_bytes"]),
            "second_half_rss_per_channel_bytes": c.get("second_half_rss_per_channel_bytes") and round(c["second_half_rss_per_channel_bytes"]),
            "stored_data_bytes_per_channel": c["stored_bytes_per_channel"],
            "server_rss_per_user_bytes": dm["server_rss_per_user_bytes"] and round(dm["server_rss_per_user_bytes"]),
            "data_dir_mib": round(row["data_dir_kib"] / 1024, 1),
            "messages_per_second": round(m["per_second"]), "messages_acked": m["acked"], "messages_failed": m["failed"],
            "notices_received": m["notices_received"], "notices_dropped": m["notices_dropped"] + c["notices_dropped"],
            "deliveries_per_server_cpu_second": m["deliveries_per_server_cpu_second"] and round(m["deliveries_per_server_cpu_second"]),
            "server_cores": m["server_cores"] and round(m["server_cores"], 2),
            "notice_p50_ms": ms(m["latency"]["p50_us"]), "notice_p99_ms": ms(m["latency"]["p99_us"]),
            "notice_max_ms": ms(m["latency"]["max_us"]),
            "lost": m["lost"], "duplicated": m["duplicated"], "out_of_order": m["out_of_order"],
            "channel_gaps": m["channel_gaps"], "channel_repeats": m["channel_repeats"], "reconnects": m["reconnects"],
            "unread_per_second": round(r["unread_per_second"]), "reads_sent": r["reads_sent"],
            "reads_moved": r["reads_moved"], "reads_refused": r["reads_refused"],
            "reads_per_second": round(r["reads_per_second"]),
            "reads_per_server_cpu_second": r["reads_per_server_cpu_second"] and round(r["reads_per_server_cpu_second"]),
            "errors": {k: v["count"] for k, v in report["errors"].items()},
        }
    elif row["kind"] == "baseline" and report.get("delivery"):
        d, p = report["delivery"], report["publish"]
        server = report.get("server") or {}
        summary[key] = {
            "subscribers": d["subscribers"], "publications_per_second": round(p["per_second"]),
            "deliveries_per_second": round(d["per_second"]),
            "deliveries_per_server_cpu_second": d["per_server_cpu_second"] and round(d["per_server_cpu_second"]),
            "latency_p50_ms": ms(d["latency"]["p50_us"]), "latency_p99_ms": ms(d["latency"]["p99_us"]),
            "lost": d["lost"], "duplicated": d["duplicated"], "out_of_order": d["out_of_order"],
            "errors": {k: v["count"] for k, v in report["errors"].items()},
        }
    else:
        summary[key] = {"failed": row["stderr_tail"][-300:], "exit_status": row["exit_status"]}
for durability in {row["durability"] for row in rows}:
    dm, base = summary.get(f"dm-{durability}", {}), summary.get(f"baseline-{durability}", {})
    if dm.get("deliveries_per_server_cpu_second") and base.get("deliveries_per_server_cpu_second"):
        dm["deliveries_per_cpu_second_vs_baseline"] = round(
            dm["deliveries_per_server_cpu_second"] / base["deliveries_per_server_cpu_second"], 3)
machine = {"cpus": os.cpu_count(), "kernel": platform.release(),
           "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
settings = {"history": os.environ.get("HISTORY", "on"), "users": int(users), "channels": int(channels), "workers": int(workers), "rate": float(rate),
            "duration": duration, "baseline_publishers": int(publishers)}
doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
       "machine": machine, "settings": settings, "summary": summary, "runs": rows}
json.dump(doc, open(out, "w"), indent=1)
for key, values in summary.items():
    print(f"{key}:", json.dumps(values))
EOF
say "wrote $OUT"
