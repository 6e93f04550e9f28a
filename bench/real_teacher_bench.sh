#!/usr/bin/env bash
# retort vs a plain multi-threaded client on the same llama.cpp llama-server, in one run:
# shared/real-teacher/bench.py (stdlib Python, one keep-alive connection per worker thread) and
# `retort harvest` send the same N requests (bench.py's shape: one user message "Question {i}:
# name a colour.", max_tokens 16, temperature 0.8, a seed) at each concurrency. Per concurrency,
# two fresh servers: on the first the plain client goes first and retort second, on the other
# retort first and the plain client second, so each client is measured both as the first client
# of a fresh server and as the second. Prints req/s and max latency side by side with the
# ratios retort/plain; retort's req/s twice: over the whole process (start-up, database,
# the governor's probe, the final commit) and over its request window (first request sent to
# last answer received), which is what bench.py's figure covers.
#
# DESIGN=ab (recommended): the server's own speed drifts (every server gets faster over its first
# thousand requests or so, and fresh servers differ by 10-20 %), which swamps a few per cent
# between clients in the paired design above. This design controls for it:
#   fresh: ROUNDS rounds; in each, retort and the plain client are each the first client of a
#          fresh server of their own (order alternating by round): mean req/s per client with a
#          95 % interval, and the ratio of the means with a bootstrap interval;
#   warm:  one server, warmed with 200 requests, then ROUNDS pairs in ABBA order (plain-retort,
#          retort-plain, ...): the geometric mean of the per-pair ratios with a 95 % interval.
# Both parts also read llama-server's log for the slots' occupancy during each run (the share of
# slot time spent on requests, measured by the server) and for how often its decode steps reused
# the compute graph (lower when its slots run out of step). bench/real_teacher_stats.py prints them.
# Usage: bench/real_teacher_bench.sh [BUILD_DIR] [N]   (BUILD_DIR holds the retort binary,
#   default build-bench; N requests per client and row, default 400)
# env: CONCURRENCIES="4 16" (default), DESIGN=pairs (the two-server pairs above) or ab,
#   REPEAT=1 (pairs: passes over all rows), ROUNDS=6 (ab: rounds of each part), PARTS="fresh
#   warm" (ab), RUNS_OUT (ab: where the per-run records are copied, default
#   /tmp/real_teacher_runs.jsonl), REAL_TEACHER_DIR (llama-server built by
#   ../shared/real-teacher/setup.sh, default /var/cache/retort-real-teacher), MAX_S=300 (bound
#   of each client run, seconds). Needs python3, curl, sqlite3.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-bench}
N=${2:-400}
CONCURRENCIES=${CONCURRENCIES:-4 16}
MAX_S=${MAX_S:-300}
REPEAT=${REPEAT:-1}
DESIGN=${DESIGN:-pairs}
ROUNDS=${ROUNDS:-6}
PARTS=${PARTS:-fresh warm}
RT_DIR=${REAL_TEACHER_DIR:-/var/cache/retort-real-teacher}
RETORT=$(realpath "$BUILD/retort")
BENCH_PY=$(realpath ../shared/real-teacher/bench.py)
SERVER_BIN=$RT_DIR/llama.cpp/build/bin/llama-server
MODEL=${REAL_TEACHER_MODEL:-$RT_DIR/models/standin-random-15M-f32.gguf}
[ -x "$RETORT" ] || { echo "no retort binary in $BUILD" >&2; exit 1; }
[ -x "$SERVER_BIN" ] && [ -f "$MODEL" ] || {
  echo "no llama-server or model in $RT_DIR: run REAL_TEACHER_DIR=$RT_DIR bash ../shared/real-teacher/setup.sh" >&2
  exit 1
}
WORK=$(mktemp -d /tmp/retort-rtbench-XXXXXX)
SERVER_PID=""
stop_server() {  # by its recorded pid only: SIGTERM, SIGKILL after 15 s
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID"
    for _ in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -9 "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap 'stop_server; rm -rf "$WORK"' EXIT

echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD) retort=$RETORT N=$N; $(uptime)"
load=$(cut -d' ' -f1 /proc/loadavg)
if python3 -c "import sys; sys.exit(0 if float('$load') < 1.5 else 1)"; then :; else
  echo "WARNING: load average $load >= 1.5: other work is running, figures will not be comparable" >&2
fi

# start_server: a fresh llama-server with start.sh's flags on a free 127.0.0.1 port (a port
# taken between the probe and the bind is retried); sets PORT and SERVER_PID.
start_server() {
  local attempt
  for attempt in 1 2 3 4 5; do
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$SERVER_BIN" --host 127.0.0.1 --port "$PORT" -m "$MODEL" -a tiny -c 4096 -np 4 -t 2 --no-webui --offline \
      > "$WORK/server-$PORT.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 1200); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      if grep -q "listening on http://127.0.0.1:$PORT" "$WORK/server-$PORT.log" &&
         [ "$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ]; then
        return 0
      fi
      sleep 0.1
    done
    if grep -q "couldn't bind" "$WORK/server-$PORT.log"; then SERVER_PID=""; continue; fi
    tail -20 "$WORK/server-$PORT.log" >&2
    stop_server
    echo "llama-server did not start" >&2
    exit 1
  done
  echo "no free port for llama-server in 5 attempts" >&2
  exit 1
}

# plain C [COUNT]: bench.py (unchanged, run through runpy to read its per-request list for the
# latencies) sends COUNT (default N) requests; prints "req_per_s max_ms ok p50_ms".
plain() {
  python3 - "$BENCH_PY" "$PORT" "$1" "${2:-$N}" "$MAX_S" <<'EOF'
import contextlib, io, json, runpy, sys
path = sys.argv[1]
sys.argv = [path] + sys.argv[2:]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    g = runpy.run_path(path, run_name="__main__")
s = json.loads(out.getvalue().strip().splitlines()[-1])
lat = sorted(r[1] for r in g["res"] if r[0] == 200)
nan = float("nan")
print(f"{s['req_per_s']} {lat[-1] * 1000 if lat else nan:.0f} {s['ok']} {lat[len(lat) // 2] * 1000 if lat else nan:.1f}")
EOF
}

# retort C NAME: imports N prompts into a new database (not timed), times `retort harvest`
# (the whole process); prints "req_per_s max_ms done window_req_per_s p50_ms". Latencies from
# responses.latency_ms; the window is first request sent to last answer received.
retort_run() {
  local c=$1 db=$WORK/$2.db t0 t1
  python3 - "$N" > "$WORK/$2.jsonl" <<'EOF'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"id": f"q{i:05d}", "prompt": f"Question {i}: name a colour."}))
EOF
  "$RETORT" import --db "$db" --set s "$WORK/$2.jsonl" > /dev/null
  t0=$(date +%s.%N)
  "$RETORT" harvest --db "$db" --set s --run r --model tiny --base-url "http://127.0.0.1:$PORT/v1" \
    --max-tokens 16 --temperature 0.8 --seed 0 --concurrency "$c" --timeout "$MAX_S" --progress off \
    > "$WORK/$2.out" 2> "$WORK/$2.err" || { echo "harvest failed:" >&2; tail -5 "$WORK/$2.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  # The request window: first request sent to last answer received (what bench.py's wall is:
  # its threads' lifetime, without interpreter start-up).
  read -r done max window_ms < <(sqlite3 -separator ' ' "$db" \
    "SELECT COUNT(*), MAX(latency_ms), MAX(received_at) - MIN(received_at - latency_ms) FROM responses")
  p50=$(sqlite3 "$db" "SELECT latency_ms FROM responses ORDER BY latency_ms LIMIT 1 OFFSET (SELECT COUNT(*) / 2 FROM responses)")
  python3 -c "print(f'{$done / ($t1 - $t0):.2f} {$max:.0f} $done {$done / max($window_ms, 1) * 1000:.2f} {$p50:.1f}')"
}

# check NAME VALUES...: every value read from a client run is there (a failed run prints nothing).
check() {
  local name=$1
  shift
  for v in "$@"; do [ -n "$v" ] || { echo "$name: no result" >&2; exit 1; }; done
}

# ab_run PART C CLIENT ROUND SEQ OFFSET: one client run on the current server, appended to
# $WORK/runs.jsonl with where its tasks are in the server's log (OFFSET tasks launched before).
ab_run() {
  local part=$1 c=$2 client=$3 round=$4 seq=$5 offset=$6 rps max ok p50 win
  if [ "$client" = plain ]; then
    read -r rps max ok p50 < <(plain "$c")
    win=$rps
  else
    read -r rps max ok win p50 < <(retort_run "$c" "ab-$part-c$c-$seq")
  fi
  check "$part c=$c $client run $seq" "$rps" "$max" "$ok" "$p50" "$win"
  # retort must answer every request. The plain client may lose one to its 30 s socket timeout
  # when llama-server leaves a connection unserved that long (seen at N=2000 on a fresh
  # server): its req/s counts OK answers only, and the run is marked.
  if [ "$ok" != "$N" ]; then
    [ "$client" = plain ] || { echo "$part c=$c $client: $ok of $N answered" >&2; exit 1; }
    echo "WARNING: $part c=$c round $round plain: $ok of $N answered (the rest timed out)" >&2
  fi
  echo "$part c=$c round $round $client: $rps req/s, max $max ms, p50 $p50 ms"
  echo "{\"part\":\"$part\",\"c\":$c,\"client\":\"$client\",\"round\":$round,\"pair\":$round,\"seq\":$seq," \
       "\"rps\":$rps,\"rps_window\":$win,\"max_ms\":$max,\"p50_ms\":$p50,\"slots\":4,\"ok\":$ok," \
       "\"server_log\":\"$WORK/server-$PORT.log\",\"task_offset\":$offset,\"tasks\":$N}" >> "$WORK/runs.jsonl"
}

if [ "$DESIGN" = ab ]; then
  seq=0
  for c in $CONCURRENCIES; do
    for part in $PARTS; do
      if [ "$part" = fresh ]; then
        for round in $(seq 1 "$ROUNDS"); do
          order="retort plain"; [ $((round % 2)) = 0 ] && order="plain retort"
          for client in $order; do
            start_server
            seq=$((seq + 1)); ab_run fresh "$c" "$client" "$round" "$seq" 0
            stop_server
          done
        done
      elif [ "$part" = warm ]; then
        start_server
        plain "$c" 200 > /dev/null
        offset=200
        for round in $(seq 1 "$ROUNDS"); do
          order="plain retort"; [ $((round % 2)) = 0 ] && order="retort plain"
          for client in $order; do
            seq=$((seq + 1)); ab_run warm "$c" "$client" "$round" "$seq" "$offset"
            offset=$((offset + N))
          done
        done
        stop_server
      else
        echo "unknown part $part (fresh, warm)" >&2; exit 2
      fi
    done
  done
  echo "$(uptime)"
  echo
  python3 bench/real_teacher_stats.py "$WORK/runs.jsonl"
  cp "$WORK/runs.jsonl" "${RUNS_OUT:-/tmp/real_teacher_runs.jsonl}"
  exit 0
fi

declare -a ROWS=()
for rep in $(seq 1 "$REPEAT"); do
for c in $CONCURRENCIES; do
  start_server
  read -r p1_rps p1_max p1_ok _ < <(plain "$c")
  read -r r2_rps r2_max r2_ok r2_win _ < <(retort_run "$c" "c$c-second-$rep")
  check "c=$c plain first, retort second" "$p1_rps" "$p1_max" "$p1_ok" "$r2_rps" "$r2_max" "$r2_ok"
  echo "c=$c server A (port $PORT): plain first $p1_rps req/s, max $p1_max ms ($p1_ok ok); retort second $r2_rps req/s, max $r2_max ms ($r2_ok done)"
  stop_server
  start_server
  read -r r1_rps r1_max r1_ok r1_win _ < <(retort_run "$c" "c$c-first-$rep")
  read -r p2_rps p2_max p2_ok _ < <(plain "$c")
  check "c=$c retort first, plain second" "$r1_rps" "$r1_max" "$r1_ok" "$p2_rps" "$p2_max" "$p2_ok"
  echo "c=$c server B (port $PORT): retort first $r1_rps req/s, max $r1_max ms ($r1_ok done); plain second $p2_rps req/s, max $p2_max ms ($p2_ok ok)"
  stop_server
  ROWS+=("$c first $p1_rps $p1_max $p1_ok $r1_rps $r1_max $r1_ok $r1_win")
  ROWS+=("$c second $p2_rps $p2_max $p2_ok $r2_rps $r2_max $r2_ok $r2_win")
done
done
echo "$(uptime)"
echo
echo "| concurrency | client of a fresh server | plain req/s | plain max latency | retort req/s (whole process) | retort req/s (request window) | retort max latency | req/s retort/plain (process) | req/s retort/plain (window) | max latency retort/plain |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
  python3 - $row "$N" <<'EOF'
import sys
c, order, prps, pmax, pok, rrps, rmax, rok, rwin, n = sys.argv[1:]
note = lambda ok: "" if int(ok) == int(n) else f" ({ok}/{n} ok)"
print(f"| {c} | {order} | {float(prps):.1f}{note(pok)} | {float(pmax):,.0f} ms | {float(rrps):.1f}{note(rok)} | "
      f"{float(rwin):.1f} | {float(rmax):,.0f} ms | **{float(rrps) / float(prps):.2f}** | "
      f"**{float(rwin) / float(prps):.2f}** | {float(rmax) / float(pmax):.2f} |")
EOF
done
if [ "$REPEAT" -gt 1 ]; then
  echo
  echo "Means over $REPEAT passes:"
  echo
  echo "| concurrency | client of a fresh server | plain req/s | retort req/s (whole process) | req/s retort/plain (mean of ratios) | min ratio | max ratio |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}" | python3 -c '
import sys, collections
g = collections.OrderedDict()
for line in sys.stdin:
    c, order, prps, pmax, pok, rrps, rmax, rok, rwin = line.split()
    g.setdefault((int(c), order), []).append((float(prps), float(rrps)))
for (c, order), v in g.items():
    r = [b / a for a, b in v]
    print(f"| {c} | {order} | {sum(a for a, _ in v) / len(v):.1f} | {sum(b for _, b in v) / len(v):.1f} | "
          f"**{sum(r) / len(r):.2f}** | {min(r):.2f} | {max(r):.2f} |")
'
fi
