#!/usr/bin/env bash
# Import/export benchmark: 1M prompts imported, 1M responses exported (plain and zstd).
# Usage: bench/import_export.sh [BUILD_DIR] [N]   (BUILD_DIR configured with -DRETORT_BUILD_BENCH=ON)
set -euo pipefail
BUILD=${1:-build-bench}
N=${2:-1000000}
RETORT=$BUILD/retort
GEN=$BUILD/bench/retort_bench_gen
WORK=$(mktemp -d /tmp/retort-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

secs() { python3 -c "import sys; print(float(sys.argv[1]))" "$1"; }

echo "== generating $N prompts"
"$GEN" prompts "$N" "$WORK/prompts.jsonl"
echo "prompts file: $(du -h "$WORK/prompts.jsonl" | cut -f1)"
sync  # the generator's dirty pages are written back now, not during the timed import

echo "== machine: $(nproc) CPUs; $(uptime)"
echo "== import"
/usr/bin/time -f "%e %M %U %S" -o "$WORK/import.time" "$RETORT" import --db "$WORK/import.db" --set bench "$WORK/prompts.jsonl"
read -r el rss us sy < "$WORK/import.time"
python3 -c "import sys; n,e,r,c=int(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]),float(sys.argv[4])+float(sys.argv[5]); print(f'import: {n} prompts in {e:.2f} s = {n/e:,.0f} prompts/s (CPU user+sys {c:.2f} s), peak RSS {r/1024:.1f} MiB')" "$N" "$el" "$rss" "$us" "$sy"

echo "== generating $N responses"
"$GEN" responses "$WORK/resp.db" "$N"
sync

for c in none zstd; do
  echo "== export ($c)"
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/export.time" "$RETORT" export --db "$WORK/resp.db" --run bench --out "$WORK/out-$c" --compress "$c" --shard-bytes 268435456
  read -r el rss us sy < "$WORK/export.time"
  bytes=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(sum(s['uncompressed_bytes'] for s in m['splits']), sum(s['bytes'] for s in m['splits']))" "$WORK/out-$c/manifest.json")
  set -- $bytes
  python3 -c "import sys; u,f,e,r,cpu=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4]),float(sys.argv[6])+float(sys.argv[7]); print(f'export {sys.argv[5]}: {u/1e6:.0f} MB of JSONL ({f/1e6:.0f} MB on disk) in {e:.2f} s = {u/1e6/e:.0f} MB/s (CPU user+sys {cpu:.2f} s), peak RSS {r/1024:.1f} MiB')" "$1" "$2" "$el" "$rss" "$c" "$us" "$sy"
done
