#!/usr/bin/env bash
# Batch-harvest benchmark (issue #14): N jobs through the OpenAI Batch API path against `retort sim`
# (write request files, upload, create, poll, download, ingest), timed per phase from the log,
# with retort's peak RSS; once with batches of 50,000 requests (the provider limit) and once with
# batches of 5,000, to show that memory does not grow with the batch size (files are streamed).
# Usage: bench/batch_bench.sh [BUILD_DIR] [N]
set -euo pipefail
BUILD=${1:-build}
N=${2:-100000}
RETORT=$(realpath "$BUILD/retort")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/retort-batch-bench-XXXXXX")
SIM_PID=
cleanup() { [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"

echo "== machine: $(nproc) CPUs; $(uptime)"
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "{\"id\":\"q%07d\",\"messages\":[{\"role\":\"user\",\"content\":\"Question %d: explain topic %d in a few sentences, with one example.\"}]}\n", i, i, i % 977 }' > prompts.jsonl
PORT=$((20000 + RANDOM % 20000))
"$RETORT" sim --listen "127.0.0.1:$PORT" --batch-complete-s 1 --max-words 60 > sim.log 2>&1 &
SIM_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break; sleep 0.1; done

for per_batch in 50000 5000; do
  rm -rf c.db c.db-* c.db.batches
  "$RETORT" import --db c.db --set s prompts.jsonl > /dev/null
  start=$(date +%s.%N)
  /usr/bin/time -f "%e %M %U %S" -o time.txt "$RETORT" harvest --db c.db --set s --run r --model sim-1 \
    --base-url "http://127.0.0.1:$PORT/v1" --mode batch --batch-poll 0.5 --batch-max-requests "$per_batch" \
    --max-tokens 128 --progress off 2>&1 | while IFS= read -r line; do echo "$(date +%s.%N) $line"; done > log.txt
  read -r el rss us sy < time.txt
  python3 - "$N" "$per_batch" "$start" "$el" "$rss" log.txt "$us" "$sy" <<'PY'
import sys, re
n, per, start, el, rss, path = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
cpu = float(sys.argv[7]) + float(sys.argv[8])
t = {}
for line in open(path):
    ts, _, msg = line.partition(" ")
    for key, pat in (("written", r"requests \(\d+ bytes\) written"), ("uploaded", r": uploaded as "),
                     ("completed", r" completed"), ("stored", r" stored: ")):
        if re.search(pat, msg):
            t.setdefault(key, []).append(float(ts))
done = sum(int(m) for m in re.findall(r"stored: (\d+) answers", open(path).read()))
w = max(t["written"]) - start
up = max(t["uploaded"]) - max(t["written"])
ing = max(t["stored"]) - min(t["completed"])
print(f"batches of {per:,}: {n:,} jobs, {done:,} stored, wall {el:.1f} s (simulated batch time 1 s + polling); "
      f"write {w:.2f} s = {n/w:,.0f} req/s, upload {up:.2f} s = {n/up:,.0f} req/s, "
      f"results ready -> stored {ing:.2f} s = {n/ing:,.0f} req/s (includes the simulator generating the answers); "
      f"retort CPU {cpu:.1f} s in all = {n/cpu:,.0f} jobs per CPU-second; peak RSS {rss/1024:.1f} MiB")
PY
done
