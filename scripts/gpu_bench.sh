#!/bin/bash
# On a lent GPU machine (no PyAV, pydantic or network there): the full pipeline (PyAV decode ->
# torch CUDA FP16 -> x264) with `streamer bench`, and the network alone (scripts/cuda_bench.py).
#   mkdir .whl2 && pip download --only-binary=:all: --python-version 312 --no-deps -d .whl2 \
#     --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
#     pydantic pydantic-core annotated-types typing-extensions typing-inspection pyyaml tqdm av prometheus-client \
#     pytest pluggy iniconfig packaging pytest-timeout pygments   # pytest >= 9 needs pygments
#   bash scripts/gpu_carry.sh hide   # checkpoints out: the tree must stay under 64 MiB
#   run(command="bash scripts/gpu_bench.sh", carry=[".whl2"])   # `... quick`: fast's pipeline only
#   `... sweep`: fast at 720p/1080p with 1-3 frames in flight (900 frames each: the 300-frame runs
#   swing a few %), then a 1/2/4-camera site; one summary file (the tool returns only a few files).
# First, every mode but sweep: the tests that need CUDA (the torch uint8 GPU path against the float path).
set -u
if [ "${1:-}" = sweep ]; then
  python3 -m pip install -q --no-index --find-links .whl2 --target /tmp/site pydantic pyyaml tqdm av prometheus-client 2>&1 | tail -1
  export PYTHONPATH=/tmp/site:$PWD; O=${OUT:-/tmp/out}; mkdir -p $O; T=$(mktemp -d)
  for s in 1280x720 1920x1080; do for i in 1 2 3; do
    timeout 50 python3 -m streamer.cli bench --backend torch --device cuda --size $s --frames 900 --inflight $i \
      --json > $T/b_${s}_i$i.json 2> $T/b_${s}_i$i.err || tail -3 $T/b_${s}_i$i.err
  done; done
  timeout 90 python3 -m streamer.cli bench --backend torch --device cuda --size 1280x720 --frames 300 --streams 1,2,4 \
    --json > $T/sites.json 2> $T/sites.err || tail -3 $T/sites.err
  python3 - $T > $O/sweep.json <<'PY'
import glob, json, os, sys
out = {}
for f in sorted(glob.glob(sys.argv[1] + "/*.json")):
    try: out[os.path.basename(f)] = json.load(open(f))
    except ValueError as e: out[os.path.basename(f)] = f"unreadable: {e}"
print(json.dumps(out))
PY
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); [print(k, v['runs']['pipeline']['fps'], v['runs']['passthrough']['fps']) for k,v in d.items() if k.startswith('b_') and isinstance(v, dict)]" $O/sweep.json
  exit 0
fi
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
[ "${1:-}" != quick ] && timeout 90 python3 scripts/cuda_bench.py --models fast,fast-drops,drn --out $O/cuda_bench.json 2>&1 | tail -8
python3 - <<'PY'
import json, glob, os
for f in sorted(glob.glob(os.environ.get("OUT", "/tmp/out") + "/bench_*.json")):
    try:
        d = json.load(open(f)); print(f, {k: (v["fps"], v["stage_ms"]) for k, v in d["runs"].items()})
    except Exception as e: print(f, "unreadable", e)
PY
