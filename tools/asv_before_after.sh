#!/usr/bin/env bash
# asv timings of a base revision and of the working tree, one after the other in
# this Python environment (asv --python=same: no asv-built environments, so no
# package downloads), then `asv compare` of the two.
#
#   tools/asv_before_after.sh BASE_REV [BENCHMARK_REGEX] [asv run options...]
#   tools/asv_before_after.sh bd16f63 'Activation.time_op|AlongAxis'
#
# The base is checked out into a temporary git worktree; each side runs its own
# benchmark files and imports nbops from its own tree (PYTHONPATH) with its own
# empty kernel cache, warmed by the benchmarks' setup before anything is timed. Run it on a quiet machine: the
# ratios are only as good as the machine's stillness.
set -euo pipefail
base_rev=${1:?usage: tools/asv_before_after.sh BASE_REV [BENCHMARK_REGEX] [asv options]}
bench=${2:-.}
shift $(( $# >= 2 ? 2 : 1 ))
top=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'git -C "$top" worktree remove --force "$tmp/base" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git -C "$top" worktree add --detach "$tmp/base" "$base_rev" >/dev/null
base_hash=$(git -C "$top" rev-parse "$base_rev")
head_hash=$(git -C "$top" rev-parse HEAD)
if [ "$base_hash" = "$head_hash" ]; then
    echo "BASE_REV is HEAD: commit the change first" >&2
    exit 2
fi
cd "$top/asv_bench"
asv machine --yes >/dev/null
for side in base head; do
    if [ "$side" = base ]; then tree="$tmp/base"; hash=$base_hash; else tree=$top; hash=$head_hash; fi
    # each side runs its own benchmark files (they may read nbops internals that
    # differ), writing into this checkout's results folder
    python - "$tree" "$tmp/asv-$side.json" <<'PY'
import json, sys
tree, dest = sys.argv[1:]
conf = json.load(open("asv.conf.json"))
conf.update(benchmark_dir=f"{tree}/asv_bench/benchmarks", repo="..")
json.dump(conf, open(dest, "w"))
PY
    cp "$tmp/asv-$side.json" "asv-$side.conf.json"  # asv resolves paths from the config's folder
    echo "== $side ($hash) from $tree"
    PYTHONPATH="$tree" NBOPS_CACHE_DIR="$tmp/cache-$side" \
        asv run --config "asv-$side.conf.json" --python=same --set-commit-hash="$hash" \
        -b "$bench" "$@" || status=$?
    rm -f "asv-$side.conf.json"
done
asv compare --split --factor 1.05 "$base_hash" "$head_hash"
exit "${status:-0}"
