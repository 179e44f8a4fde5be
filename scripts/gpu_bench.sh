#!/bin/bash
# On a lent GPU machine (no PyAV, pydantic or network there): the full pipeline (PyAV decode ->
# torch CUDA FP16 -> x264) with `streamer bench`, and the network alone (scripts/cuda_bench.py).
#   mkdir .whl2 && pip download --only-binary=:all: --python-version 312 --no-deps -d .whl2 \
#     --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
#     pydantic pydantic-core annotated-types typing-extensions typing-inspection pyyaml tqdm av prometheus-client \
#     pytest pluggy iniconfig packaging pytest-timeout
#   bash scripts/gpu_carry.sh hide   # checkpoints out: the tree must stay under 64 MiB
#   run(command="bash scripts/gpu_bench.sh", carry=[".whl2"])   # `... quick`: fast's pipeline only
# First, every mode: the tests that need CUDA (the torch uint8 GPU path against the float path).
set -u
python3 -m pip install -q --no-index --find-links .whl2 --target /tmp/site pydantic pyyaml tqdm av prometheus-client \
  pytest pytest-timeout 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi -L; nproc; python3 -c "import torch, av; print(torch.__version__, av.__version__, torch.cuda.is_available())"
O=${OUT:-/tmp/out}; mkdir -p $O
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_backends.py -k cuda 2>&1 | tail -5 | tee $O/pytest_cuda.txt
[ "${1:-}" = quick ] && timeout 60 python3 -m streamer.cli bench --backend torch --device cuda --size 1280x720 \
  --frames 300 --inflight 1 --json > $O/bench_fast_inflight1.json 2> $O/bench_fast_inflight1.err
for s in 1280x720 1920x1080; do
  timeout 60 python3 -m streamer.cli bench --backend torch --device cuda --size $s --frames 300 --json > $O/bench_fast_$s.json 2> $O/bench_fast_$s.err; echo "fast $s rc=$?"; tail -2 $O/bench_fast_$s.err
done
[ "${1:-}" != quick ] && timeout 60 python3 -m streamer.cli bench --model fast-drops --backend torch --device cuda --size 1280x720 --frames 300 --json > $O/bench_drops_720.json 2> $O/bench_drops_720.err && echo "drops ok"
[ "${1:-}" != quick ] && timeout 90 python3 scripts/cuda_bench.py --models fast,fast-drops,drn,eigen2013-dirt --out $O/cuda_bench.json 2>&1 | tail -8
python3 - <<'PY'
import json, glob, os
for f in sorted(glob.glob(os.environ.get("OUT", "/tmp/out") + "/bench_*.json")):
    try:
        d = json.load(open(f)); print(f, {k: (v["fps"], v["stage_ms"]) for k, v in d["runs"].items()})
    except Exception as e: print(f, "unreadable", e)
PY
