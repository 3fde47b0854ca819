#!/bin/sh
# One shard of a sweep, run by each pod of the Indexed Job (sim-seeds.yaml).
#
# Environment: JOB_COMPLETION_INDEX (set by Kubernetes for an Indexed Job), SHARDS (the Job's
# completions), SEEDS (a range like 0..1000000), WORKLOAD (kv, raft or shardkv), JOBS (worker
# threads, one per core of the pod's CPU request), EXTRA (more sim flags, optional).
#
# The sweep's log goes to stderr; its JSON summary is printed on stdout between two marker
# lines, so `collect.sh` can take every shard's summary from the pod logs without a shared
# volume. Failing seeds are results, not pod failures: sim's exit code 1 is reported in the
# summary and the pod still succeeds, so Kubernetes retries only what broke (eviction, OOM,
# bad arguments), never a deterministic failure.
set -u
: "${JOB_COMPLETION_INDEX:?run as an Indexed Job}" "${SHARDS:?}" "${SEEDS:?}"
summary=/tmp/summary.json
# shellcheck disable=SC2086 # EXTRA is a list of flags
sim --seeds "$SEEDS" --shard "$JOB_COMPLETION_INDEX/$SHARDS" --jobs "${JOBS:-1}" \
  --workload "${WORKLOAD:-kv}" --out /tmp/sim-failures --json "$summary" ${EXTRA:-} 1>&2
status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then
  exit "$status"
fi
echo "--- sim summary begin: shard $JOB_COMPLETION_INDEX/$SHARDS ---"
cat "$summary"
echo "--- sim summary end ---"
