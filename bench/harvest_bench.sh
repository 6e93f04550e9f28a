#!/usr/bin/env bash
# Harvest benchmark against `retort sim` on loopback: (1) throughput vs wrk's raw ceiling,
# (2) rate-limited runs (--rpm given, and limits learned from headers), (3) 1024 requests in
# flight at 2 s latency vs Little's law, (4) peak RSS of every harvest.
# Usage: bench/harvest_bench.sh [BUILD_DIR] [N]   (BUILD_DIR configured with -DRETORT_BUILD_BENCH=ON;
# N = prompts of the throughput run, default 50000). Needs wrk, python3, curl, /usr/bin/time.
# SCENARIOS="1 2 3" (default: all) picks scenarios.
set -euo pipefail
BUILD=${1:-build-bench}
N=${2:-50000}
RETORT=$(realpath "$BUILD/retort")
GEN=$(realpath "$BUILD/bench/retort_bench_gen")
WORK=$(mktemp -d /tmp/retort-hbench-XXXXXX)
SIM_PID=""
stop_sim() {
  if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi
  SIM_PID=""
}
trap 'stop_sim; rm -rf "$WORK"' EXIT
# Its own tools, from Debian's packages when missing.
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
export OPENAI_API_KEY=bench-key
SCENARIOS=${SCENARIOS:-1 2 3}
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# start_sim ARGS...: starts `retort sim` on an ephemeral port; sets SIM_PID and URL.
start_sim() {
  stop_sim
  rm -f "$WORK/sim.out"  # else the loop below may read the previous sim's port
  "$RETORT" sim --listen 127.0.0.1:0 --seed 1 "$@" > "$WORK/sim.out" 2> "$WORK/sim.err" &
  SIM_PID=$!
  for _ in $(seq 1 100); do
    grep -q "listening on" "$WORK/sim.out" 2>/dev/null && break
    sleep 0.1
  done
  local line
  line=$(grep "listening on" "$WORK/sim.out")
  URL="http://127.0.0.1:${line##*:}"
}

# prompts NAME COUNT: a fresh DB with COUNT generated prompts in set "bench".
prompts() {
  "$GEN" prompts "$2" "$WORK/$1.jsonl"
  "$RETORT" import --db "$WORK/$1.db" --set bench "$WORK/$1.jsonl" > /dev/null
}

# harvest NAME ARGS...: times a harvest of DB NAME; prints "wall_s peak_rss_kib".
harvest() {
  local name=$1
  shift
  /usr/bin/time -v -o "$WORK/$name.time" "$RETORT" harvest --db "$WORK/$name.db" --set bench --run bench \
    --model bench-teacher --base-url "$URL/v1" --max-tokens 64 "$@" 2> "$WORK/$name.err" > /dev/null || {
    echo "harvest $name failed:"; tail -5 "$WORK/$name.err"; exit 1; }
  python3 - "$WORK/$name.time" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", t)
wall = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
print(f"{wall:.2f} {rss}")
EOF
}

sim_stats() { curl -s "$URL/sim/stats"; }

if want 1; then
echo "== (1) throughput: $N prompts, zero-latency sim (--threads 512), harvest --concurrency 64"
prompts thr "$N"
start_sim --threads 512
BODY=$(head -1 "$WORK/thr.jsonl" | python3 -c "import json,sys; l=json.loads(sys.stdin.readline()); print(json.dumps({'model':'bench-teacher','max_tokens':64,'messages':l['messages']}))")
cat > "$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = [[$BODY]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-key"
EOF
WRK_RPS=$(wrk -t2 -c64 -d5s -s "$WORK/post.lua" "$URL/v1/chat/completions" | awk '/Requests\/sec/ {print $2}')
read -r T1 RSS1 < <(harvest thr --concurrency 64 --progress off)
python3 - "$N" "$T1" "$RSS1" "$WRK_RPS" <<'EOF'
import sys
n, t, rss, raw = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
print(f"wrk raw: {raw:,.0f} req/s; harvest: {n} in {t:.2f} s = {n/t:,.0f} req/s, peak RSS {rss/1024:.1f} MiB; "
      f"ratio {n/t/raw:.2f} (target >= 0.30)")
EOF

fi

if want 2; then
echo "== (2) rate-limited: 1000 prompts, sim --rpm 6000 (ideal 10 s)"
for mode in given learned; do
  prompts "rl-$mode" 1000
  start_sim --threads 512 --rpm 6000
  if [ "$mode" = given ]; then extra=(--rpm 6000); else extra=(); fi
  read -r T2 RSS2 < <(harvest "rl-$mode" --concurrency 64 --progress off "${extra[@]}")
  sim_stats > "$WORK/rl-$mode.stats"
  python3 - "$mode" "$T2" "$RSS2" "$WORK/rl-$mode.stats" <<'EOF'
import json, sys
mode, t, rss, s = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), json.load(open(sys.argv[4]))
share = s["rate_limited"] / max(1, s["requests"])
label = "--rpm 6000 given" if mode == "given" else "no --rpm (learned from headers)"
print(f"{label}: {t:.2f} s (ideal 10 s, x{t/10:.2f}), {s['requests']} requests, {s['rate_limited']} 429s "
      f"= {100*share:.1f} %, peak RSS {rss/1024:.1f} MiB")
EOF
done

fi

if want 3; then
echo "== (3) 1024 in flight: 10240 prompts, sim --latency-ms 2000 --threads 1100, harvest --concurrency 1024"
prompts lat 10240
start_sim --threads 1100 --latency-ms 2000
read -r T3 RSS3 < <(harvest lat --concurrency 1024 --progress json --progress-interval 1)
python3 - "$T3" "$RSS3" "$WORK/lat.err" <<'EOF'
import json, sys
t, rss = float(sys.argv[1]), int(sys.argv[2])
pts = []
for line in open(sys.argv[3]):
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if "done" in j and "elapsed_s" in j:
        pts.append((j["elapsed_s"], j["done"]))
total = 10240 / t
# steady state: between 10 % and 90 % done
lo = next((p for p in pts if p[1] >= 1024), None)
hi = next((p for p in pts if p[1] >= 9216), None)
steady = (hi[1] - lo[1]) / (hi[0] - lo[0]) if lo and hi and hi[0] > lo[0] else float("nan")
print(f"10240 in {t:.2f} s = {total:.0f} req/s overall (Little's law 512; x{total/512:.2f}), "
      f"steady state (10-90 % done) {steady:.0f} req/s (x{steady/512:.2f}), peak RSS {rss/1024:.1f} MiB")
EOF
fi
