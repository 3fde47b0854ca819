#!/usr/bin/env bash
# Mutation testing with the simulator as the test: cargo-mutants mutates raft-core and
# workloads (see .cargo/mutants.toml for what is examined and what is excluded, and why), and
# a mutant is killed when the regression corpus or a short seed sweep of every workload
# (sim/tests/mutant_sweep.rs) or a scripted shardkv scenario (sim/tests/shardkv.rs) fails.
#
#   scripts/mutants.sh [--shard K/N] [--seeds A..B] [--workloads raft,kv,shardkv] [--out DIR]
#                      [--list]
#
# --shard K/N  run only mutant i with i % N == K (cargo-mutants' round-robin sharding), a
#              sample of every N-th mutant spread over all files; the nightly workflow walks
#              the whole set one shard per night. Default: every mutant.
# --seeds      seeds per workload for each mutant (default 1..201).
# --workloads  workloads each mutant is swept on, cheapest first (default raft,kv,shardkv).
# --out DIR    where cargo-mutants' output and the survivors report go (default mutants-out).
# --list       list the mutants the run would test, and stop.
#
# Writes DIR/survivors.md (file, line, mutation and seeds tried of every mutant no seed
# killed) and DIR/summary.txt (counts and the kill rate). Exit status: 0 when every viable
# mutant was killed, 2 when some survived, 1 for bad arguments or a failed baseline.
set -euo pipefail
cd "$(dirname "$0")/.."

shard=""
seeds="1..201"
workloads="raft,kv,shardkv"
out="mutants-out"
list=0
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --shard) shard="${2:?--shard needs K/N}"; shift 2 ;;
    --seeds) seeds="${2:?--seeds needs A..B}"; shift 2 ;;
    --workloads) workloads="${2:?--workloads needs a list}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --list) list=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "mutants: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done
if [ -n "$shard" ] && ! [[ "$shard" =~ ^[0-9]+/[1-9][0-9]*$ ]]; then
  echo "mutants: --shard must be K/N with K < N, got $shard" >&2; exit 1
fi
if [ -n "$shard" ] && [ "${shard%/*}" -ge "${shard#*/}" ]; then
  echo "mutants: --shard must be K/N with K < N, got $shard" >&2; exit 1
fi
if ! [[ "$seeds" =~ ^[0-9]+\.\.[0-9]+$ ]]; then
  echo "mutants: --seeds must be A..B, got $seeds" >&2; exit 1
fi

if ! cargo mutants --version >/dev/null 2>&1; then
  echo "mutants: installing cargo-mutants" >&2
  cargo install --locked cargo-mutants
fi

args=(--no-shuffle --sharding round-robin)
[ -n "$shard" ] && args+=(--shard "$shard")
if [ "$list" = 1 ]; then
  cargo mutants --list "${args[@]}"
  exit 0
fi

mkdir -p "$out"
export SIM_MUTANT_SEEDS="$seeds" SIM_MUTANT_WORKLOADS="$workloads"
# The unmutated baseline, run here rather than by cargo-mutants (whose baseline runs the
# mutated packages' tests, not --test-package's). It also warms target/mutants, which
# cargo-mutants copies into its build directory, so each mutant rebuilds only what changed.
echo "mutants: baseline sweep (seeds $seeds of $workloads)" >&2
base_start=$(date +%s)
if ! cargo test --profile mutants -p sim --test mutant_sweep --test shardkv -- --include-ignored; then
  echo "mutants: the unmutated tree fails the sweep; fix that first" >&2
  exit 1
fi
base_secs=$(( $(date +%s) - base_start ))
# A mutant that makes the simulator hang is cut after three baseline sweeps (at least 120 s).
timeout_secs=$(( base_secs * 3 > 120 ? base_secs * 3 : 120 ))
args+=(--baseline skip --timeout "$timeout_secs")
status=0
# After `--`: arguments of `cargo test`, then after the second `--` those of the test binary.
cargo mutants "${args[@]}" --test-package sim --output "$out" \
  -- --test mutant_sweep --test shardkv -- --include-ignored || status=$?
# cargo-mutants: 0 all caught, 2 some missed, 3 some timed out; anything else is a failure of
# the run itself (bad arguments, baseline failing).
case "$status" in
  0|2|3) ;;
  *) echo "mutants: cargo-mutants failed with status $status (see $out/mutants.out)" >&2; exit 1 ;;
esac

dir="$out/mutants.out"
count() {
  if [ -f "$dir/$1.txt" ]; then grep -c . "$dir/$1.txt" || true; else echo 0; fi
}
caught=$(count caught)
missed=$(count missed)
timeout=$(count timeout)
unviable=$(count unviable)
# A mutant that hangs the simulator is caught by the timeout: a hang is a failure a user sees.
killed=$((caught + timeout))
viable=$((killed + missed))
rate="n/a"
[ "$viable" -gt 0 ] && rate=$(awk -v k="$killed" -v v="$viable" 'BEGIN { printf "%.1f%%", 100 * k / v }')
{
  echo "shard: ${shard:-all}; seeds per workload: $seeds; workloads: $workloads"
  echo "killed: $killed (caught $caught, timed out $timeout); survived: $missed; unviable: $unviable"
  echo "kill rate of viable mutants: $rate"
} | tee "$out/summary.txt"

{
  echo "# Mutants no seed killed"
  echo
  echo "Seeds tried per mutant: $seeds of each of $workloads. Each row is either equivalent"
  echo "(then add it to .cargo/mutants.toml with the reason) or a miss of the simulator."
  echo
  echo "| file | line | mutation |"
  echo "| --- | --- | --- |"
  if [ -f "$dir/missed.txt" ]; then
    # Lines look like `raft-core/src/log.rs:120:9: replace < with <= in Log::term`.
    sed -E 's/^([^:]+):([0-9]+):[0-9]+: (.*)$/| \1 | \2 | \3 |/' "$dir/missed.txt"
  fi
} > "$out/survivors.md"
echo "survivors: $out/survivors.md"
[ "$missed" -eq 0 ] || exit 2
