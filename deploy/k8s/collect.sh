#!/bin/sh
# Collects the JSON summary of every shard of an Indexed Job run by run-shard.sh from the pod
# logs, then merges them with `sim merge` (seeds run, failures with their reproduce commands,
# missing shards, per-shard figures).
#
#   deploy/k8s/collect.sh JOB DIR [SIM]
#
# JOB is the Job's name (sim-seeds), DIR where the summaries and merged.json go, SIM the sim
# binary (default: target/release/sim). Exit code: sim merge's (0 every shard present and
# every seed passed, 1 failures or missing shards, 2 unreadable summaries).
set -eu
job=${1:?usage: collect.sh JOB DIR [SIM]}
dir=${2:?usage: collect.sh JOB DIR [SIM]}
sim=${3:-target/release/sim}
mkdir -p "$dir"
for pod in $(kubectl get pods -l "job-name=$job" \
  --field-selector=status.phase=Succeeded -o name); do
  index=$(kubectl get "$pod" \
    -o jsonpath='{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}')
  kubectl logs "$pod" \
    | sed -n '/^--- sim summary begin/,/^--- sim summary end/p' \
    | sed '1d;$d' > "$dir/summary-$index.json"
done
"$sim" merge "$dir"/summary-*.json --json "$dir/merged.json"
