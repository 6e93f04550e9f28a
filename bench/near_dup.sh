#!/usr/bin/env bash
# Near-duplicate export benchmark: N responses of ~1 KB (prompt ~150 B + answer ~900 B), every 10th a
# planted near-duplicate of the one before; times `retort export` without and with --near-dup 0.8.
# Usage: bench/near_dup.sh [BUILD_DIR] [N]   (BUILD_DIR configured with -DRETORT_BUILD_BENCH=ON)
set -euo pipefail
BUILD=${1:-build-bench}
N=${2:-1000000}
RETORT=$BUILD/retort
GEN=$BUILD/bench/retort_bench_gen
WORK=$(mktemp -d "${TMPDIR:-/tmp}/retort-neardup-bench-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "== generating $N responses (every 10th a near-duplicate)"
"$GEN" responses "$WORK/resp.db" "$N" 10
sync
echo "== machine: $(nproc) CPUs; $(uptime)"
for args in "" "--near-dup 0.8" "--near-dup 0.8 --near-dup-on answer"; do
  echo "== export $args"
  # shellcheck disable=SC2086
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/export.time" "$RETORT" export --db "$WORK/resp.db" --run bench \
    --out "$WORK/out" $args --json > "$WORK/manifest.json"
  read -r el rss us sy < "$WORK/export.time"
  python3 - "$N" "$el" "$rss" "$us" "$sy" "$WORK/manifest.json" "$args" <<'PY'
import json, sys
n, el, rss, us, sy, path, args = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6], sys.argv[7]
m = json.load(open(path))
nd = m.get("near_dup", {})
extra = f", near_duplicate dropped {nd['dropped']:,} (b={nd['bands']}, r={nd['rows']})" if nd else ""
print(f"export {args or '(no near-dup)'}: {n:,} records in {el:.2f} s = {n/el:,.0f} records/s (CPU user+sys {us+sy:.2f} s), "
      f"peak RSS {rss/1024:.1f} MiB, exported {m['counts']['exported']:,}{extra}")
PY
done
