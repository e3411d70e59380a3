#!/usr/bin/env bash
# Fanfare against its peers, in one session on this machine: Sockudo and
# Soketi (Pusher protocol), nats-server (NATS over WebSocket, the fan-out
# reference), and Fanfare itself over its native protocol and over Pusher's.
#
# It installs what is missing (outside the repository, under $PEERS_DIR),
# starts every server on loopback only, fresh for every run, runs the same
# `fanfare bench` scenarios against each, RUNS times (interleaved, so a
# noisy minute hurts every server alike), stops everything it started by
# pid, and writes:
#
#   $OUT_DIR/results-YYYY-MM-DD[-LABEL].json   every run's report, medians, machine
#   $OUT_DIR/*.svg                     bar charts (median, min–max whiskers)
#
# and prints a summary table. Nothing here is an assertion: a peer that
# cannot hold a scale is recorded with what it did (errors, refusals).
#
# Usage: scripts/bench-peers.sh [options]
#   --peers-dir DIR     where peers are installed   (env PEERS_DIR, default ~/.cache/fanfare-peers)
#   --out-dir DIR       results and charts          (env OUT_DIR, default docs/bench)
#   --runs N            runs per scenario and server (env RUNS, default 3)
#   --duration D        publish / hold time per run (env DURATION, default 10s)
#   --targets "A B"     subset of: fanfare-native fanfare-pusher sockudo soketi nats fanfare-store
#                       and, not run unless named: fanfare-pusher-memory (Pusher, store memory://
#                       instead of the default embedded:// with fsync), fanfare-nagle (native, tcp_nodelay = false),
#                       fanfare-one-worker (native, worker_threads = 1), bare, bare-nodelay and
#                       bare-one-worker (the bare coalescing broadcaster example, the reference
#                       of the fan-out targets: Nagle on / TCP_NODELAY / TCP_NODELAY, one thread),
#                       fanfare-baseline and fanfare-pusher-baseline (native / Pusher against the
#                       binary given by --baseline-bin: an earlier commit, measured in the same run),
#                       fanfare-tls (native over wss:// and https://, built-in TLS with a
#                       certificate made by openssl for the session)
#   --scenarios "A B"   subset of: idle fanout-throughput fanout-latency history reconnect-storm reconnect-storm-light
#                       and, not run unless named: pusher-batch-throughput and pusher-batch-latency
#                       (Pusher servers only: 500 events of 100 B sent as batch_events of 10 to
#                       1,000 subscribers, as fast as they keep up and at 50 events/s; env
#                       PUSHER_BATCH_MESSAGES, PUSHER_BATCH; the event count ends these runs, not --duration)
#   --baseline-bin PATH a fanfare binary of another commit, for the *-baseline targets (env BASELINE_BIN)
#   --label NAME        results-YYYY-MM-DD-NAME.json instead of results-YYYY-MM-DD.json (env LABEL)
#   --quick             1 run, 3 s, 2,000 idle connections: a smoke test of the script
#   --pin               server on CPU 0, load tool on CPU 1 (taskset): no core shared
#   --install-only      install missing peers and stop
#   --no-install        never install; skip a peer that is missing
#
# Needs: bash, python3, cargo (builds target/release/fanfare), and for
# installing: apt-get (protobuf-compiler, nats-server), npm (Soketi).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PEERS_DIR=${PEERS_DIR:-$HOME/.cache/fanfare-peers}
OUT_DIR=${OUT_DIR:-$REPO/docs/bench}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
BIND_HOST=${BIND_HOST:-127.0.0.1}
SOURCE_ADDRS=${SOURCE_ADDRS:-127.0.0.2,127.0.0.3,127.0.0.4}
BIG_CONNECTIONS=${BIG_CONNECTIONS:-15000}   # idle and reconnect-storm
FANOUT_CONNECTIONS=${FANOUT_CONNECTIONS:-1000}
WORKERS=${WORKERS:-3}
CUT_AFTER=${CUT_AFTER:-3s}                  # reconnect-storm: when every connection is cut
PUSHER_BATCH=${PUSHER_BATCH:-10}            # pusher-batch-*: events per batch_events request
PUSHER_BATCH_MESSAGES=${PUSHER_BATCH_MESSAGES:-500}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}             # seconds: the bench's own --timeout; killed 30 s later
INSTALL_TIMEOUT=${INSTALL_TIMEOUT:-7200}    # seconds, per peer install
TARGETS=${TARGETS:-fanfare-native fanfare-pusher sockudo soketi nats fanfare-store}
SCENARIOS=${SCENARIOS:-idle fanout-throughput fanout-latency history reconnect-storm reconnect-storm-light}
SOCKUDO_VERSION=5.2.0
SOKETI_VERSION=1.6.1
UWS_OVERRIDE=npm:@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0
LABEL=${LABEL:-}
BASELINE_BIN=${BASELINE_BIN:-}
INSTALL=auto
SERVER_ON=()   # --pin: the command prefixes that put the server and the tool on their own core
TOOL_ON=()

die() { echo "bench-peers: $*" >&2; exit 1; }
say() { echo "[bench-peers $(date -u +%H:%M:%S)] $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --peers-dir) PEERS_DIR=$2; shift 2 ;;
    --out-dir) OUT_DIR=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --targets) TARGETS=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --label) LABEL=$2; shift 2 ;;
    --baseline-bin) BASELINE_BIN=$2; shift 2 ;;
    --quick) RUNS=1; DURATION=3s; CUT_AFTER=1s; BIG_CONNECTIONS=2000; shift ;;
    --pin) SERVER_ON=(taskset -c 0); TOOL_ON=(taskset -c 1); shift ;;
    --install-only) INSTALL=only; shift ;;
    --no-install) INSTALL=never; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

SOCKUDO_BIN=${SOCKUDO_BIN:-$PEERS_DIR/sockudo/bin/sockudo}
SOKETI_DIR=${SOKETI_DIR:-$PEERS_DIR/soketi}
NATS_SERVER=${NATS_SERVER:-$(PATH="$PATH:/usr/sbin:/sbin" command -v nats-server || true)}

# --- Loopback only ----------------------------------------------------------

is_loopback() { [[ $1 =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]]; }
is_loopback "$BIND_HOST" || die "refusing to start servers on $BIND_HOST: only 127.0.0.0/8"
IFS=, read -r -a sources <<<"$SOURCE_ADDRS"
for ip in "${sources[@]}"; do
  is_loopback "$ip" || die "refusing source address $ip: only 127.0.0.0/8"
done

# --- Installing what is missing ---------------------------------------------

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root for: $*"; fi
}

install_sockudo() {
  if [ -x "$SOCKUDO_BIN" ]; then return 0; fi
  [ "$INSTALL" = never ] && { say "Sockudo missing at $SOCKUDO_BIN (--no-install)"; return 1; }
  command -v protoc >/dev/null || as_root apt-get install -y protobuf-compiler
  say "installing Sockudo $SOCKUDO_VERSION into $PEERS_DIR/sockudo (about 45 min on 2 cores)"
  mkdir -p "$PEERS_DIR"
  # From $PEERS_DIR, so no cargo config of the repository applies.
  (cd "$PEERS_DIR" && CARGO_TARGET_DIR="$PEERS_DIR/sockudo-target" timeout "$INSTALL_TIMEOUT" \
    cargo install sockudo --version "$SOCKUDO_VERSION" --locked --root "$PEERS_DIR/sockudo")
}

install_soketi() {
  if [ -x "$SOKETI_DIR/node_modules/.bin/soketi" ]; then return 0; fi
  [ "$INSTALL" = never ] && { say "Soketi missing in $SOKETI_DIR (--no-install)"; return 1; }
  command -v npm >/dev/null || die "Soketi needs node and npm"
  say "installing Soketi $SOKETI_VERSION into $SOKETI_DIR"
  mkdir -p "$SOKETI_DIR"
  cat >"$SOKETI_DIR/package.json" <<EOF
{
  "name": "soketi-peer",
  "private": true,
  "dependencies": { "@soketi/soketi": "$SOKETI_VERSION" },
  "overrides": { "uWebSockets.js": "$UWS_OVERRIDE" }
}
EOF
  (cd "$SOKETI_DIR" && timeout "$INSTALL_TIMEOUT" npm install --no-audit --no-fund)
}

install_nats() {
  if [ -n "$NATS_SERVER" ] && [ -x "$NATS_SERVER" ]; then return 0; fi
  [ "$INSTALL" = never ] && { say "nats-server missing (--no-install)"; return 1; }
  say "installing nats-server (Debian package; its system service is not used)"
  as_root apt-get install -y nats-server
  NATS_SERVER=$(PATH="$PATH:/usr/sbin:/sbin" command -v nats-server)
}

has_target() { [[ " $TARGETS " == *" $1 "* ]]; }
available=""
if has_target sockudo; then install_sockudo && available+=" sockudo"; fi
if has_target soketi; then install_soketi && available+=" soketi"; fi
if has_target nats; then install_nats && available+=" nats"; fi
for t in fanfare-native fanfare-pusher fanfare-pusher-memory fanfare-store fanfare-nagle fanfare-one-worker fanfare-tls bare bare-nodelay bare-one-worker; do
  has_target $t && available+=" $t"
done
for t in fanfare-baseline fanfare-pusher-baseline; do
  if has_target $t; then
    [ -x "$BASELINE_BIN" ] || die "$t needs --baseline-bin PATH (an executable fanfare of another commit)"
    available+=" $t"
  fi
done
[ "$INSTALL" = only ] && { say "peers installed:$available"; exit 0; }

command -v python3 >/dev/null || die "python3 is needed for the results and charts"
say "building target/release/fanfare"
(cd "$REPO" && cargo build --release -p fanfare)
if has_target bare || has_target bare-nodelay || has_target bare-one-worker; then
  (cd "$REPO" && cargo build --release -p fanfare-bench --example bare_broadcaster)
fi
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$REPO" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || COMMIT+="+changes"
CHANGED=$(git -C "$REPO" status --short -- crates Cargo.toml Cargo.lock 2>/dev/null | awk '{print $2}' | tr '\n' ' ')

# --- Session: limits, credentials, cleanup ------------------------------------

# Raise the open-file limit as far as allowed; servers and workers inherit it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
SESSION=$(mktemp -d "${TMPDIR:-/tmp}/fanfare-bench-peers.XXXXXX")
mkdir -p "$SESSION/runs" "$SESSION/logs" "$OUT_DIR"
started_pids=()
# A private copy: a rebuild of target/ during the session (another build on
# this machine) must not change the binary under test between runs.
FANFARE=$SESSION/fanfare
cp "$REPO/target/release/fanfare" "$FANFARE"
BARE=$SESSION/bare_broadcaster
BASELINE=$SESSION/fanfare-baseline
[ -n "$BASELINE_BIN" ] && cp "$BASELINE_BIN" "$BASELINE"
if has_target bare || has_target bare-nodelay || has_target bare-one-worker; then
  cp "$REPO/target/release/examples/bare_broadcaster" "$BARE"
fi
# fanfare-tls: a CA and a certificate for the loopback address, P-256.
TLS_DIR=$SESSION/tls
if has_target fanfare-tls; then
  command -v openssl >/dev/null || die "fanfare-tls needs openssl"
  mkdir -p "$TLS_DIR"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=bench CA" \
    -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$BIND_HOST" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s\n' "$BIND_HOST" >"$TLS_DIR/san.ext"
  openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" -CAcreateserial \
    -days 1 -extfile "$TLS_DIR/san.ext" -out "$TLS_DIR/server.pem" 2>/dev/null
fi

cleanup() {
  local pid
  for pid in "${started_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$SESSION"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

random_hex() { python3 -c "import secrets; print(secrets.token_hex($1))"; }
# One Pusher app for every Pusher server, one API key for Fanfare; the bench
# reads the same variables.
export FANFARE_API_KEY=bench-$(random_hex 16)
export FANFARE_PUSHER_APP_ID=bench-app
export FANFARE_PUSHER_APP_KEY=bench-key-$(random_hex 6)
export FANFARE_PUSHER_APP_SECRET=$(random_hex 16)

free_port() {
  python3 -c "import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])" "$BIND_HOST"
}

wait_port() { # host port seconds pid
  local i
  for i in $(seq $(($3 * 10))); do
    kill -0 "$4" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# --- Servers ------------------------------------------------------------------

SERVER_PID="" SERVER_URL=""

# Sets SERVER_URL from the "… listening on ADDR" line that Fanfare and the
# bare broadcaster print once they listen (port 0: the kernel picks).
listening_url() { # log
  local i addr=""
  for i in $(seq 300); do
    addr=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$1" | head -n1)
    [ -n "$addr" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$addr" ] || return 1
  is_loopback "${addr%:*}" || die "a server listens on $addr, not loopback"
  SERVER_URL=http://$addr
}

start_server() { # target log
  local target=$1 log=$2 port
  SERVER_PID="" SERVER_URL=""
  case $target in
    fanfare-native|fanfare-pusher|fanfare-pusher-memory|fanfare-nagle|fanfare-one-worker|fanfare-baseline|fanfare-pusher-baseline|fanfare-tls)
      # The store is set even where it is the default (embedded, fsync), so
      # a FANFARE_STORE_URL in the caller's environment cannot change it.
      local data nodelay=true threads=0 store=embedded:// binary=$FANFARE cert="" key=""
      data=$(mktemp -d "$SESSION/fanfare-data.XXXXXX")
      [ "$target" = fanfare-nagle ] && nodelay=false
      [ "$target" = fanfare-one-worker ] && threads=1
      [ "$target" = fanfare-pusher-memory ] && store=memory://
      [[ $target = *-baseline ]] && binary=$BASELINE
      [ "$target" = fanfare-tls ] && cert=$TLS_DIR/server.pem key=$TLS_DIR/server.key
      # No handshake limit: the scenarios open their connections as fast as
      # the node takes them (the default 1,000/s would pace every connect
      # phase and the reconnect storm; docs/benchmarks.md, issue 12).
      FANFARE_STORE_URL=$store FANFARE_DURABILITY=fsync FANFARE_TCP_NODELAY=$nodelay FANFARE_WORKER_THREADS=$threads \
        FANFARE_TLS_CERT_FILE=$cert FANFARE_TLS_KEY_FILE=$key FANFARE_LIMITS_MAX_HANDSHAKES_PER_SECOND=0 \
        "${SERVER_ON[@]}" "$binary" serve --listen "$BIND_HOST:0" --data-dir "$data" >"$log" 2>&1 &
      SERVER_PID=$!
      started_pids+=("$SERVER_PID")
      listening_url "$log" || return 1
      if [ "$target" = fanfare-tls ]; then SERVER_URL=https://${SERVER_URL#http://}; fi
      ;;
    sockudo)
      port=$(free_port)
      env HOST="$BIND_HOST" PORT="$port" DEBUG=false METRICS_ENABLED=false \
        RATE_LIMITER_ENABLED=false QUEUE_DRIVER=none CACHE_DRIVER=memory ADAPTER_DRIVER=local \
        SOCKUDO_MAX_CONNECTIONS=1000000 SHUTDOWN_GRACE_PERIOD=1 \
        SOCKUDO_DEFAULT_APP_ID="$FANFARE_PUSHER_APP_ID" SOCKUDO_DEFAULT_APP_KEY="$FANFARE_PUSHER_APP_KEY" \
        SOCKUDO_DEFAULT_APP_SECRET="$FANFARE_PUSHER_APP_SECRET" \
        SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=1000000 \
        SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=1000000 \
        SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND=1000000 \
        SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND=1000000 \
        "${SERVER_ON[@]}" "$SOCKUDO_BIN" >"$log" 2>&1 &
      SERVER_PID=$!
      started_pids+=("$SERVER_PID")
      wait_port "$BIND_HOST" "$port" 60 "$SERVER_PID" || return 1
      SERVER_URL=http://$BIND_HOST:$port
      ;;
    soketi)
      port=$(free_port)
      local metrics_port
      metrics_port=$(free_port)
      (cd "$SOKETI_DIR" && exec "${SERVER_ON[@]}" env SOKETI_HOST="$BIND_HOST" SOKETI_PORT="$port" \
        SOKETI_METRICS_ENABLED=false SOKETI_METRICS_HOST="$BIND_HOST" SOKETI_METRICS_SERVER_PORT="$metrics_port" \
        SOKETI_DEFAULT_APP_ID="$FANFARE_PUSHER_APP_ID" SOKETI_DEFAULT_APP_KEY="$FANFARE_PUSHER_APP_KEY" \
        SOKETI_DEFAULT_APP_SECRET="$FANFARE_PUSHER_APP_SECRET" \
        SOKETI_DEFAULT_APP_MAX_CONNS=-1 SOKETI_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SEC=-1 \
        SOKETI_SHUTDOWN_GRACE_PERIOD=500 \
        node_modules/.bin/soketi start) >"$log" 2>&1 &
      SERVER_PID=$!
      started_pids+=("$SERVER_PID")
      wait_port "$BIND_HOST" "$port" 60 "$SERVER_PID" || return 1
      SERVER_URL=http://$BIND_HOST:$port
      ;;
    nats)
      # A separate instance on its own ports, never the system service.
      port=$(free_port)
      local tcp_port conf=$SESSION/nats-$port.conf
      tcp_port=$(free_port)
      cat >"$conf" <<EOF
listen: "$BIND_HOST:$tcp_port"
websocket {
  listen: "$BIND_HOST:$port"
  no_tls: true
}
EOF
      "${SERVER_ON[@]}" "$NATS_SERVER" -c "$conf" >"$log" 2>&1 &
      SERVER_PID=$!
      started_pids+=("$SERVER_PID")
      wait_port "$BIND_HOST" "$port" 30 "$SERVER_PID" || return 1
      SERVER_URL=ws://$BIND_HOST:$port
      ;;
    bare|bare-nodelay|bare-one-worker)
      local flags=()
      [ "$target" = bare-nodelay ] && flags=(--nodelay)
      [ "$target" = bare-one-worker ] && flags=(--nodelay --one-worker)
      "${SERVER_ON[@]}" "$BARE" "$BIND_HOST:0" "${flags[@]}" >"$log" 2>&1 &
      SERVER_PID=$!
      started_pids+=("$SERVER_PID")
      listening_url "$log" || return 1
      ;;
    fanfare-store) ;; # the store in the bench's own process: no server
    *) die "unknown target $target" ;;
  esac
}

stop_server() {
  local pid=$SERVER_PID
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  SERVER_PID=""
}

# --- Scenarios ----------------------------------------------------------------

# The targets a scenario applies to, and why the others cannot run it.
targets_of() {
  case $1 in
    idle|fanout-throughput|fanout-latency)
      echo "fanfare-native fanfare-pusher sockudo soketi nats fanfare-nagle fanfare-one-worker bare bare-nodelay bare-one-worker fanfare-baseline fanfare-pusher-baseline fanfare-tls" ;;
    history) echo "fanfare-native fanfare-store" ;;
    reconnect-storm|reconnect-storm-light) echo "fanfare-native" ;;
    pusher-batch-throughput|pusher-batch-latency) echo "fanfare-pusher fanfare-pusher-memory sockudo soketi fanfare-pusher-baseline" ;;
    *) die "unknown scenario $1" ;;
  esac
}

scenario_args() { # scenario target
  local big="--connections $BIG_CONNECTIONS --workers $WORKERS --source-addrs $SOURCE_ADDRS --connect-concurrency 32"
  case $1 in
    idle) echo "idle $big --duration $DURATION" ;;
    fanout-throughput) echo "fanout --connections $FANOUT_CONNECTIONS --size 100 --rate 0 --duration $DURATION" ;;
    fanout-latency) echo "fanout --connections $FANOUT_CONNECTIONS --size 100 --rate 50 --duration $DURATION" ;;
    # Through the server, HTTP bounds the rate whatever is in flight (64,
    # 1,024 and 4,096 measured alike); the store alone needs thousands in
    # flight to fill its group commits (up to 4,096 appends each).
    history) if [ "$2" = fanfare-store ]; then
        echo "history --channels 1000 --in-flight 4096 --duration $DURATION"
      else
        echo "history --channels 1000 --duration $DURATION"
      fi ;;
    reconnect-storm) echo "reconnect-storm $big --rate 100 --cut-after $CUT_AFTER --duration $DURATION" ;;
    reconnect-storm-light) echo "reconnect-storm $big --rate 10 --cut-after $CUT_AFTER --duration $DURATION" ;;
    # The event count ends the run; the duration is only a cap (at 50/s,
    # 500 events take 10 s).
    pusher-batch-throughput) echo "fanout --connections $FANOUT_CONNECTIONS --size 100 --rate 0 --messages $PUSHER_BATCH_MESSAGES --pusher-batch $PUSHER_BATCH --duration 60s" ;;
    pusher-batch-latency) echo "fanout --connections $FANOUT_CONNECTIONS --size 100 --rate 50 --messages $PUSHER_BATCH_MESSAGES --pusher-batch $PUSHER_BATCH --duration 60s" ;;
  esac
}

protocol_of() {
  case $1 in
    fanfare-native|fanfare-store|fanfare-nagle|fanfare-one-worker|fanfare-baseline|fanfare-tls|bare|bare-nodelay|bare-one-worker) echo native ;;
    fanfare-pusher|fanfare-pusher-memory|fanfare-pusher-baseline|sockudo|soketi) echo pusher ;;
    nats) echo nats ;;
  esac
}

run_one() { # scenario target run
  local scenario=$1 target=$2 run=$3
  local name=$scenario.$target.$run
  local log=$SESSION/logs/$name.server.log
  local out=$SESSION/runs/$name.json err=$SESSION/runs/$name.stderr
  local meta=$SESSION/runs/$name.meta
  local started load rc=0
  started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  if ! start_server "$target" "$log"; then
    say "$name: the server did not start (see below)"
    tail -n 20 "$log" >&2 || true
    printf '%s\n' "started=$started" "load=$load" "rc=start-failed" "command=" >"$meta"
    tail -n 40 "$log" >"$err" 2>/dev/null || true
    stop_server
    return 0
  fi
  local args
  args="$(scenario_args "$scenario" "$target") --protocol $(protocol_of "$target")"
  [ "$target" = fanfare-store ] && args+=" --data-dir $SESSION --durability fsync"
  [ -n "$SERVER_URL" ] && args+=" --url $SERVER_URL"
  [ -n "$SERVER_PID" ] && args+=" --server-pid $SERVER_PID"
  [ "$target" = fanfare-tls ] && args+=" --ca-file $TLS_DIR/ca.pem"
  # The command as documented: no pid, port or temporary path.
  local shown
  shown="fanfare bench $(scenario_args "$scenario" "$target") --protocol $(protocol_of "$target")"
  [ "$target" = fanfare-store ] && shown+=" --data-dir \$TMPDIR --durability fsync"
  [ -n "$SERVER_URL" ] && shown+=" --url \$URL --server-pid \$PID"
  [ "$target" = fanfare-tls ] && shown+=" --ca-file ca.pem"
  say "$name: $shown"
  # shellcheck disable=SC2086 # args are words by construction
  timeout --kill-after=15s $((RUN_TIMEOUT + 30)) "${TOOL_ON[@]}" "$FANFARE" bench $args \
    --timeout "${RUN_TIMEOUT}s" --json --no-progress >"$out" 2>"$err" &
  local bench=$!
  started_pids+=("$bench")
  wait "$bench" || rc=$?
  stop_server
  printf '%s\n' "started=$started" "load=$load" "rc=$rc" "command=$shown" >"$meta"
  if [ "$rc" != 0 ]; then say "$name: exit $rc: $(tail -n 1 "$err")"; fi
}

# --- The session --------------------------------------------------------------

say "session $SESSION; runs=$RUNS duration=$DURATION open files=$FD_LIMIT targets:$available"
for run in $(seq "$RUNS"); do
  for scenario in $SCENARIOS; do
    for target in $(targets_of "$scenario"); do
      [[ " $available " == *" $target "* ]] || continue
      run_one "$scenario" "$target" "$run"
    done
  done
done

# --- Machine, results, charts ---------------------------------------------------

DATE=$(date -u +%Y-%m-%d)
PUSHER_BATCH_RUNS=""
[[ " $SCENARIOS " == *" pusher-batch-"* ]] && PUSHER_BATCH_RUNS=yes
RESULTS=results-$DATE${LABEL:+-$LABEL}.json
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc=$(nproc)"
  echo "cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)"
  echo "memory=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "kernel=$(uname -r)"
  echo "rustc=$(rustc --version 2>/dev/null)"
  echo "fanfare_commit=$COMMIT"
  echo "fanfare_uncommitted=$CHANGED"
  echo "open_files=$FD_LIMIT"
  [[ " $available " == *" sockudo "* ]] && echo "sockudo=$("$SOCKUDO_BIN" --version 2>/dev/null | head -n1)"
  [[ " $available " == *" soketi "* ]] && echo "soketi=@soketi/soketi $(sed -n 's/^ *"version": *"\(.*\)",*/\1/p' "$SOKETI_DIR/node_modules/@soketi/soketi/package.json" | head -n1), node $(node --version)"
  [[ " $available " == *" nats "* ]] && echo "nats=$("$NATS_SERVER" --version 2>/dev/null)"
  echo "settings=runs $RUNS, duration $DURATION, pinned: ${SERVER_ON[*]:-no}${TOOL_ON[*]:+ / tool }${TOOL_ON[*]:-}, $BIG_CONNECTIONS idle/storm connections over $WORKERS workers from $SOURCE_ADDRS, $FANOUT_CONNECTIONS fan-out subscribers${PUSHER_BATCH_RUNS:+, pusher-batch: $PUSHER_BATCH_MESSAGES events in batches of $PUSHER_BATCH}"
} >"$SESSION/machine"

python3 - "$SESSION" "$OUT_DIR" "$DATE" "$RESULTS" <<'PY'
"""Results JSON, SVG charts and a summary table from the session's runs."""
import json, os, statistics, sys
from pathlib import Path

session, out_dir, date, results = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
LABELS = {
    "fanfare-native": "Fanfare native", "fanfare-pusher": "Fanfare Pusher",
    "fanfare-pusher-memory": "Fanfare Pusher, memory store",
    "sockudo": "Sockudo", "soketi": "Soketi", "nats": "NATS", "fanfare-store": "Fanfare store (in process)",
    "fanfare-nagle": "Fanfare native, Nagle", "bare": "bare, Nagle",
    "bare-nodelay": "bare, TCP_NODELAY", "fanfare-one-worker": "Fanfare native, 1 thread",
    "bare-one-worker": "bare, TCP_NODELAY, 1 thread",
    "fanfare-baseline": "Fanfare native, baseline commit", "fanfare-pusher-baseline": "Fanfare Pusher, baseline commit",
    "fanfare-tls": "Fanfare native, built-in TLS",
}
ORDER = list(LABELS)

def kv(path):
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        out[key] = value
    return out

def dig(report, *path):
    for key in path:
        if not isinstance(report, dict) or report.get(key) is None:
            return None
        report = report[key]
    return report

# Per scenario: the numbers worth a median, as (name, path in the report, scale).
METRICS = {
    "idle": [("kib_per_connection", ("server", "rss_per_connection_kib"), 1),
             ("connected", ("connect", "connected"), 1), ("failed", ("connect", "failed"), 1),
             ("connections_per_s", ("connect", "per_second"), 1)],
    "fanout": [("deliveries_per_server_cpu_s", ("delivery", "per_server_cpu_second"), 1),
               ("deliveries_per_s", ("delivery", "per_second"), 1),
               ("publications_per_s", ("publish", "per_second"), 1),
               ("p50_ms", ("delivery", "latency", "p50_us"), 1e-3),
               ("p99_ms", ("delivery", "latency", "p99_us"), 1e-3),
               ("p999_ms", ("delivery", "latency", "p999_us"), 1e-3),
               ("server_cpu_s", ("server", "cpu_seconds"), 1), ("tool_cpu_s", ("tool", "cpu_seconds"), 1),
               ("frames_per_write", ("server", "frames_per_write"), 1),
               ("lost", ("delivery", "lost"), 1), ("duplicated", ("delivery", "duplicated"), 1),
               ("out_of_order", ("delivery", "out_of_order"), 1)],
    "history": [("appends_per_s", ("history", "appends_per_second"), 1),
                ("append_p99_ms", ("history", "append_latency", "p99_us"), 1e-3),
                ("reads_per_s", ("history", "reads_per_second"), 1)],
    "reconnect": [("all_recovered_ms", ("recovery", "all_recovered_after_ms"), 1),
                  ("recovered", ("recovery", "recovered"), 1),
                  ("recover_p99_ms", ("recovery", "time_to_recover", "p99_us"), 1e-3),
                  ("lost", ("delivery", "lost"), 1), ("duplicated", ("delivery", "duplicated"), 1),
                  ("recovered_false", ("recovery", "recovered_false"), 1),
                  ("delivery_p50_ms", ("delivery", "latency", "p50_us"), 1e-3)],
}
def family(scenario):
    return "fanout" if scenario.startswith(("fanout", "pusher-batch")) else "reconnect" if scenario.startswith("reconnect") else scenario

runs = []
for meta_path in sorted((session / "runs").glob("*.meta")):
    scenario, target, run = meta_path.name[: -len(".meta")].rsplit(".", 2)
    meta = kv(meta_path)
    out = meta_path.with_suffix(".json")
    err = meta_path.with_suffix(".stderr")
    report = None
    if out.exists() and out.stat().st_size:
        try:
            report = json.loads(out.read_text())
        except json.JSONDecodeError:
            report = None
    stderr = err.read_text()[-2000:] if err.exists() else ""
    runs.append({"scenario": scenario, "target": target, "run": int(run), "command": meta.get("command"),
                 "started": meta.get("started"), "load_average": meta.get("load"), "exit": meta.get("rc"),
                 "report": report, "stderr_tail": stderr.strip() or None})

summary = {}
for r in runs:
    fam = family(r["scenario"])
    entry = summary.setdefault(r["scenario"], {}).setdefault(r["target"], {"runs": 0, "completed": 0, "errors": {}})
    entry["runs"] += 1
    if r["report"] is None:
        entry.setdefault("failures", []).append((r["stderr_tail"] or f"exit {r['exit']}").splitlines()[-1][:300])
        continue
    entry["completed"] += 1
    for kind, e in (r["report"].get("errors") or {}).items():
        entry["errors"][kind] = entry["errors"].get(kind, 0) + e["count"]
    for name, path, scale in METRICS[fam]:
        value = dig(r["report"], *path)
        if value is not None:
            entry.setdefault("values", {}).setdefault(name, []).append(value * scale)
for scenario in summary.values():
    for entry in scenario.values():
        entry["median"] = {k: statistics.median(v) for k, v in entry.get("values", {}).items()}
        entry["min"] = {k: min(v) for k, v in entry.get("values", {}).items()}
        entry["max"] = {k: max(v) for k, v in entry.get("values", {}).items()}

not_applicable = {
    "reconnect-storm": "Pusher and NATS core clients cannot resume from a position; only Fanfare's native protocol can",
    "reconnect-storm-light": "as reconnect-storm",
    "history": "neither the Pusher HTTP API nor NATS core has history",
    "pusher-batch-throughput": "batch_events is a Pusher HTTP API request; the native protocol and NATS have no batch",
    "pusher-batch-latency": "as pusher-batch-throughput",
}

# --- Issue 9's goals for the Pusher batch scenario: ratios within each run ---
def run_values(scenario, target, metric):
    name, path, scale = next(m for m in METRICS["fanout"] if m[0] == metric)
    values = {}
    for r in runs:
        if (r["scenario"], r["target"]) == (scenario, target) and dig(r["report"], *path) is not None:
            values[r["run"]] = dig(r["report"], *path) * scale
    return values

def per_run_goal(goal, scenario, metric, a, b, combine):
    va, vb = run_values(scenario, a, metric), run_values(scenario, b, metric)
    per_run = {run: combine(va[run], vb[run]) for run in sorted(va.keys() & vb.keys()) if vb[run]}
    if per_run:
        return {"goal": goal, "per_run": per_run, "median": statistics.median(per_run.values())}
    return None

goals = {
    "default_over_memory_deliveries_per_server_cpu_s": per_run_goal(
        ">= 0.8", "pusher-batch-throughput", "deliveries_per_server_cpu_s",
        "fanfare-pusher", "fanfare-pusher-memory", lambda a, b: a / b),
    "default_over_sockudo_deliveries_per_server_cpu_s": per_run_goal(
        ">= 3", "pusher-batch-throughput", "deliveries_per_server_cpu_s",
        "fanfare-pusher", "sockudo", lambda a, b: a / b),
    "default_frames_per_write": per_run_goal(
        ">= 4", "pusher-batch-throughput", "frames_per_write",
        "fanfare-pusher", "fanfare-pusher", lambda a, b: a),
    "default_minus_memory_p50_ms_at_50_per_s": per_run_goal(
        "<= 3", "pusher-batch-latency", "p50_ms",
        "fanfare-pusher", "fanfare-pusher-memory", lambda a, b: a - b),
}
goals = {name: goal for name, goal in goals.items() if goal}

machine = kv(session / "machine")
result = {"date": date, "machine": machine, "not_applicable": not_applicable, "summary": summary, "runs": runs}
if goals:
    result["pusher_batch_goals"] = goals
out_dir.mkdir(parents=True, exist_ok=True)
(out_dir / results).write_text(json.dumps(result, indent=1) + "\n")

# --- Charts: horizontal bars, median with a min–max whisker -------------------
def esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

def chart(file, title, unit, rows, target=None, target_label=None, fmt="{:,.0f}"):
    rows = [r for r in rows if r[1] is not None]
    runs_per_row = RUNS
    if not rows:
        return
    width, left, right, bar, gap, top = 820, 190, 130, 22, 12, 80
    height = top + len(rows) * (bar + gap) + 40
    top_value = max([r[3] for r in rows] + ([target] if target else [])) * 1.08 or 1
    x = lambda v: left + (width - left - right) * v / top_value
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
           f'<rect width="{width}" height="{height}" fill="#fff"/>',
           f'<text x="12" y="22" font-size="15" font-weight="bold">{esc(title)}</text>',
           f'<text x="12" y="42" fill="#444">{esc(unit)}</text>',
           f'<text x="12" y="60" fill="#666" font-size="12">bar: median of {runs_per_row} runs; whisker: min–max</text>']
    for i, (label, median, low, high, colour) in enumerate(rows):
        y = top + i * (bar + gap)
        out.append(f'<text x="{left - 8}" y="{y + bar * 0.7}" text-anchor="end">{esc(label)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(x(median) - left, 1):.1f}" height="{bar}" fill="{colour}"/>')
        out.append(f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y + bar / 2}" y2="{y + bar / 2}" stroke="#222" stroke-width="1.5"/>')
        for end in (low, high):
            out.append(f'<line x1="{x(end):.1f}" x2="{x(end):.1f}" y1="{y + 5}" y2="{y + bar - 5}" stroke="#222" stroke-width="1.5"/>')
        out.append(f'<text x="{max(x(high), x(median)) + 6:.1f}" y="{y + bar * 0.7}">{esc(fmt.format(median))}</text>')
    axis_y = top + len(rows) * (bar + gap)
    out.append(f'<line x1="{left}" x2="{left}" y1="{top - 4}" y2="{axis_y}" stroke="#888"/>')
    if target:
        out.append(f'<line x1="{x(target):.1f}" x2="{x(target):.1f}" y1="{top - 8}" y2="{axis_y}" stroke="#c00" stroke-dasharray="5,4"/>')
        out.append(f'<text x="{x(target):.1f}" y="{axis_y + 18}" fill="#c00" text-anchor="middle">{esc(target_label)}</text>')
    out.append("</svg>")
    (out_dir / file).write_text("\n".join(out) + "\n")

RUNS = max((r["run"] for r in runs), default=1)
COLOURS = {"fanfare-native": "#2b6cb0", "fanfare-pusher": "#63a4e8", "fanfare-pusher-memory": "#90cdf4",
           "sockudo": "#dd6b20",
           "soketi": "#38a169", "nats": "#805ad5", "fanfare-store": "#2c7a7b",
           "fanfare-nagle": "#1a4480", "bare": "#718096", "bare-nodelay": "#a0aec0",
           "fanfare-one-worker": "#3182ce", "bare-one-worker": "#cbd5e0",
           "fanfare-baseline": "#4a5568", "fanfare-pusher-baseline": "#a0aec0", "fanfare-tls": "#2a4365"}
def rows_for(scenario, metric):
    rows = []
    for target in ORDER:
        e = summary.get(scenario, {}).get(target)
        if e and metric in e.get("median", {}):
            rows.append((LABELS[target], e["median"][metric], e["min"][metric], e["max"][metric], COLOURS[target]))
    return rows

chart("fanout-throughput.svg", "Fan-out: deliveries per server CPU-second (higher is better)",
      f"1,000 subscribers on one channel, 100 B, as fast as they keep up", rows_for("fanout-throughput", "deliveries_per_server_cpu_s"),
      3_000_000, "target 3,000,000")
idle_connections = max((e["median"].get("connected", 0) for e in summary.get("idle", {}).values()), default=0)
chart("idle-memory.svg", "Idle: server memory per subscribed connection (lower is better)",
      f"KiB of server RSS growth per connection, {idle_connections:,.0f} connections held", rows_for("idle", "kib_per_connection"),
      2, "target 2 KiB", "{:,.1f} KiB")
chart("fanout-latency.svg", "Fan-out latency: p99 publish → deliver (lower is better)",
      "ms, 1,000 subscribers, 50 publications/s", rows_for("fanout-latency", "p99_ms"), 5, "target 5 ms", "{:,.2f} ms")

# --- Summary table on stdout ----------------------------------------------------
def cell(e, metric, fmt):
    if not e or metric not in e.get("median", {}):
        return "—"
    return f"{fmt.format(e['median'][metric])} ({fmt.format(e['min'][metric])}–{fmt.format(e['max'][metric])})"

print(f"\nResults: {out_dir / results}")
for scenario, metrics in [("idle", [("kib_per_connection", "{:,.1f}"), ("connected", "{:,.0f}"), ("failed", "{:,.0f}")]),
                          ("fanout-throughput", [("deliveries_per_server_cpu_s", "{:,.0f}"), ("deliveries_per_s", "{:,.0f}"), ("p99_ms", "{:,.1f}")]),
                          ("fanout-latency", [("p50_ms", "{:,.2f}"), ("p99_ms", "{:,.2f}"), ("deliveries_per_server_cpu_s", "{:,.0f}")]),
                          ("history", [("appends_per_s", "{:,.0f}"), ("reads_per_s", "{:,.0f}")]),
                          ("reconnect-storm", [("all_recovered_ms", "{:,.0f}"), ("lost", "{:,.0f}"), ("duplicated", "{:,.0f}")]),
                          ("reconnect-storm-light", [("all_recovered_ms", "{:,.0f}"), ("lost", "{:,.0f}"), ("duplicated", "{:,.0f}")]),
                          *[(scenario, [("server_cpu_s", "{:,.2f}"), ("deliveries_per_server_cpu_s", "{:,.0f}"),
                                        ("frames_per_write", "{:,.2f}"), ("p50_ms", "{:,.2f}"), ("p99_ms", "{:,.2f}")])
                            for scenario in ("pusher-batch-throughput", "pusher-batch-latency")]]:
    if scenario not in summary:
        continue
    print(f"\n## {scenario}\n")
    print("| Server | " + " | ".join(m for m, _ in metrics) + " | runs ok | errors |")
    print("|---|" + "---|" * (len(metrics) + 2))
    for target in ORDER:
        e = summary[scenario].get(target)
        if not e:
            continue
        errors = ", ".join(f"{k}: {v:,}" for k, v in e["errors"].items()) or "none"
        if e.get("failures"):
            errors += "; failed: " + " / ".join(sorted(set(e["failures"])))
        print(f"| {LABELS[target]} | " + " | ".join(cell(e, m, f) for m, f in metrics) + f" | {e['completed']}/{e['runs']} | {errors} |")
if goals:
    print("\n## pusher-batch goals (issue 9; each run's ratio, then their median)\n")
    print("| | goal | median | per run |")
    print("|---|---|---|---|")
    for name, goal in goals.items():
        per_run = ", ".join(f"{v:,.2f}" for v in goal["per_run"].values())
        print(f"| {name} | {goal['goal']} | {goal['median']:,.2f} | {per_run} |")
PY
say "done: $OUT_DIR/$RESULTS and charts in $OUT_DIR"
