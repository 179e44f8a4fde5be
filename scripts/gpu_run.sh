#!/bin/bash
# On a lent GPU machine: install the carried wheels, then train CONFIGs side by side for MINUTES.
#   run(command="bash scripts/gpu_run.sh 8 configs/train_fast_e43b_gpu.yaml", carry=[".whl", ".gpudata"])
# Archives come back under $OUT (scripts/gpu_train.sh); the logs' last lines are printed.
set -u
minutes=$1; shift
py=python3; command -v $py >/dev/null || py=python
$py -m pip install -q --no-index --find-links .whl --target /tmp/site pydantic pyyaml tqdm 2>&1 | tail -3
export PYTHONPATH=/tmp/site:$PWD PYTHON=$py
nvidia-smi -L; nproc; $py -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())"
bash scripts/gpu_train.sh "$minutes" .gpudata/images "${OUT:-/tmp/out}" "$@"
for cfg in "$@"; do
  out=$($py -c "import sys; from streamer.config import TrainConfig, load_config; print(load_config(TrainConfig, sys.argv[1]).out)" "$cfg")
  tr '\r' '\n' < "$out/train.log" | grep -E "patches_s" | awk 'NR % 20 == 0' | cut -c1-120 | tail -5
  tr '\r' '\n' < "$out/train.log" | grep -E "I streamer|Error|Traceback" | tail -12
done
