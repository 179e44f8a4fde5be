"""Network-only CUDA timing of the torch backend, FP32 vs FP16, and what FP16 costs in PSNR.

    python scripts/cuda_bench.py [--out cuda_bench.json] [--image PHOTO]

`streamer bench` times the whole pipeline (decode → network → encode) and needs PyAV; this
times `open_backend(..., device="cuda")` alone, the way a GPU integrator calls it: float32 frames
in host memory, results back in host memory (transfers included), plus the module on device
tensors only (the kernel time a Jetson projection scales from).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamer.backends import open_backend  # noqa: E402
from streamer.train.data import read_rgb  # noqa: E402

SIZES = {"720p": (720, 1280), "1080p": (1088, 1920)}  # multiples of 16


def _frame(image: Path | None, hw: tuple[int, int]) -> np.ndarray:
    if image is None:
        rng = np.random.default_rng(0)
        return rng.random((1, 3, *hw), dtype=np.float32)
    import cv2

    img = cv2.resize(read_rgb(image), (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
    return img.transpose(2, 0, 1)[None].copy()


def _time(fn, reps: int) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps * 1000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="fast,drn,eigen2013-dirt")
    ap.add_argument("--image", type=Path)
    ap.add_argument("--out", type=Path, default=Path("cuda_bench.json"))
    args = ap.parse_args()
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "cuda": torch.version.cuda, "python": platform.python_version(), "results": []}
    for model in args.models.split(","):
        for size, hw in SIZES.items():
            x = _frame(args.image, hw)
            outs = {}
            for fp16 in (False, True):
                be = open_backend(model, "torch", "cuda", fp16=fp16)
                reps = 10 if model.startswith("eigen") else 50
                e2e = _time(lambda: be(x), reps)
                xd = torch.from_numpy(x).cuda()
                xd = xd.half() if fp16 else xd
                with torch.inference_mode():
                    net = _time(lambda: be.module(xd), reps)
                outs[fp16] = be(x)
                row = {"model": model, "size": size, "fp16": fp16, "ms_end_to_end": round(e2e, 3),
                       "ms_network": round(net, 3), "fps_end_to_end": round(1000 / e2e, 1)}
                report["results"].append(row)
                print(json.dumps(row), flush=True)
                be.close()
            mse = float(np.mean((outs[True] - outs[False]) ** 2))
            report["results"].append({"model": model, "size": size,
                                      "fp16_vs_fp32_psnr_db": 100.0 if mse == 0 else 10 * math.log10(1 / mse)})
            print(json.dumps(report["results"][-1]), flush=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
