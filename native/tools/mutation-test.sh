#!/usr/bin/env bash
# Mutation test of the table's concurrency checks.
#
# Each native/tools/mutants/*.patch breaks one check the table's readers or
# writers make (its first line says which). For each, this script applies it
# to a copy of native/, builds table_stress_fast against the copy, and runs
# it RUNS times: the stress must fail every run, with a fault it reports
# (exit status 1), not a crash. A run stops at its first fault (typically
# within a second or two); a broken variant's run may take three times
# SECONDS, and on a loaded machine longer, until the readers have made
# MIN_READS pinned-key reads (table_stress.cc). The unbroken table must pass
# every run of SECONDS. CI runs it (.ci/run).
#
# Usage: native/tools/mutation-test.sh [RUNS=5] [SECONDS=10] [MUTANT...]
# A patch that no longer applies fails the run: after a change to
# native/affinity_table.cc, regenerate the patches with
# native/tools/mutants/generate.py (which says what each one replaces).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${1:-5}
seconds=${2:-10}
min_reads=${MIN_READS:-1000000}
shift $(( $# < 2 ? $# : 2 ))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() {  # build DIR CORE
  cmake -S "$here" -B "$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAFFINITYD_CORE="$2" >"$1.log" 2>&1 &&
    cmake --build "$1" --target table_stress_fast >>"$1.log" 2>&1 || { cat "$1.log"; return 1; }
}

# run BINARY SECONDS MIN_READS: prints one line per run (pass, fault after T s: the fault, ...)
run() {
  local out status
  for ((r = 1; r <= runs; r++)); do
    set +e
    out=$("$1" "$2" "$3" 2>&1)
    status=$?
    set -e
    case $status in
      0) echo "pass" ;;
      1) if grep -q '^FAULT' <<<"$out"; then
           echo "fault after $(grep -m1 -oE 'phases in [0-9.]+ s' <<<"$out" | grep -oE '[0-9.]+ s'): $(grep -m1 '^FAULT' <<<"$out")"
         else
           echo "failed without a fault: $(grep -m1 '^FAILED' <<<"$out")"
         fi ;;
      *) echo "crash:$status" ;;
    esac
  done
}

failed=0
echo "mutation test: $runs runs per variant; the unbroken table ${seconds} s and $min_reads pinned-key reads a run, a broken one up to three times that (a run stops at its first fault)"
build "$work/original" "$root/native"
results=$(run "$work/original/table_stress_fast" "$seconds" "$min_reads")
passes=$(grep -c '^pass' <<<"$results" || true)
printf '%-26s %d/%d runs passed (must be all)\n' "unbroken" "$passes" "$runs"
if [ "$passes" -ne "$runs" ]; then
  { grep -v '^pass' <<<"$results" || true; } | sed 's/^/    /'
  failed=1
fi

patches=()
if [ $# -gt 0 ]; then
  for m in "$@"; do patches+=("$here/mutants/$m.patch"); done
else
  patches=("$here"/mutants/*.patch)
fi
for p in "${patches[@]}"; do
  name=$(basename "$p" .patch)
  dir="$work/$name"
  mkdir -p "$dir"
  cp -r "$root/native" "$dir/native"
  if ! patch -s -d "$dir" -p1 <"$p"; then
    echo "$name: the patch no longer applies; regenerate the patches: python3 native/tools/mutants/generate.py"
    failed=1
    continue
  fi
  build "$dir/build" "$dir/native"
  results=$(run "$dir/build/table_stress_fast" $((seconds * 3)) $((min_reads * 3)))
  caught=$(grep -c '^fault' <<<"$results" || true)
  printf '%-26s caught in %d/%d runs (must be all): %s\n' "$name" "$caught" "$runs" "$(head -n1 "$p" | sed 's/^Mutant: //')"
  { grep '^fault' <<<"$results" || true; } | head -n 1 | sed 's/^fault /    first run: /'
  echo "    time to the fault: $({ grep -oE '^fault after [0-9.]+ s' <<<"$results" || true; } | grep -oE '[0-9.]+ s' | tr '\n' ' ')"
  if [ "$caught" -ne "$runs" ]; then
    { grep -v '^fault' <<<"$results" || true; } | sort | uniq -c | sed 's/^/    not caught: /'
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "mutation test FAILED"
  exit 1
fi
echo "mutation test ok: every broken variant caught in every run, the unbroken table passed every run"
