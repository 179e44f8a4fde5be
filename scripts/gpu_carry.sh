#!/bin/bash
# Get a lent GPU machine's copy under its 64 MiB limit, and back.
#   bash scripts/gpu_carry.sh prepare   # .whl/ (pydantic etc. for Python 3.10-3.13) + .gpudata/ (photos)
#   bash scripts/gpu_carry.sh hide [KEEP ...]   # move checkpoints/ (but KEEP files) and eigen2013 weights out
#   ...  run(command="bash scripts/gpu_run.sh MINUTES CONFIG ...", carry=[".whl", ".gpudata"])  (docs/gpu-training.md)
#   bash scripts/gpu_carry.sh restore   # put them back (git status is clean again)
# The machine has torch, OpenCV, safetensors, onnx; not pydantic, PyAV, or a network.
set -eu
stash=${GPU_STASH:-/tmp/streamer-gpu-stash}
case "${1:-}" in
  prepare)
    mkdir -p .whl .gpudata
    for v in 310 311 312 313; do
      .venv/bin/pip download -q --only-binary=:all: --python-version $v --no-deps -d .whl \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        pydantic pydantic-core annotated-types typing-extensions typing-inspection pyyaml tqdm
    done
    cp -r ../shared/data/images .gpudata/ && cp ../shared/data/MANIFEST.tsv .gpudata/
    du -sh .whl .gpudata ;;
  hide)
    shift
    mkdir -p "$stash"
    git ls-files checkpoints 'streamer/weights/eigen2013-*' | grep -v -x -F -f <(printf '%s\n' "$@" checkpoints/README.md) |
      while read -r f; do mkdir -p "$stash/$(dirname "$f")"; mv "$f" "$stash/$f"; done
    git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 ;;
  restore)
    (cd "$stash" && find . -type f) | while read -r f; do mkdir -p "$(dirname "$f")"; mv "$stash/$f" "$f"; done
    git status --short ;;
  *) echo "usage: $0 prepare | hide [KEEP ...] | restore" >&2; exit 2 ;;
esac
