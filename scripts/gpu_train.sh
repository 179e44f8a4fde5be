#!/bin/bash
# Several trainings side by side on one GPU machine, then one archive per run.
#   bash scripts/gpu_train.sh MINUTES DATA OUTDIR CONFIG [CONFIG ...]
# e.g. bash scripts/gpu_train.sh 40 ../shared/data/images /tmp/out configs/train_drn_gpu.yaml \
#        configs/train_eigen2013_dirt_gpu.yaml
# Each run stops after MINUTES (its checkpoint and best.safetensors kept), writes its log into its
# run folder, and is packed as OUTDIR/<run>.tgz (optimizer state included, so it can --resume).
# A GPU here is fed by CPU synthesis: give each config `workers` so their sum ≈ the CPU cores.
# Logs go to plain files, never through a pipe that `wait` would also wait for.
set -u
minutes=$1 data=$2 outdir=$3; shift 3
mkdir -p "$outdir"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
deadline=$(( $(date +%s) + ${minutes%.*} * 60 + 120 ))  # hard stop: 2 min past the soft one
runs=()
for cfg in "$@"; do
  out=$($py -c "import sys; from streamer.config import TrainConfig, load_config; print(load_config(TrainConfig, sys.argv[1]).out)" "$cfg") || exit 1
  mkdir -p "$out"; runs+=("$out")
  timeout $(( deadline - $(date +%s) )) $py -m streamer.cli train --config "$cfg" --data "$data" \
    --max-minutes "$minutes" > "$out/train.log" 2>&1 &
done
wait
for out in "${runs[@]}"; do
  tr '\r' '\n' < "$out/train.log" | grep -E "I streamer|Error" | tail -2
  tar czf "$outdir/$(basename "$out").tgz" "$out"
done
ls -la "$outdir"
