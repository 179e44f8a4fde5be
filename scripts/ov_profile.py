"""Where does an OpenVINO model's time go? Per-layer CPU timing (PERF_COUNT), grouped by the
ONNX node name's module prefix (e.g. /drops/..., /blend/fill/...).

    python scripts/ov_profile.py --model fast-drops [--int8] [--size 1280x720] [--threads 2] [--runs 20] [--uint8]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from streamer.backends.ov_backend import import_openvino

    ov = import_openvino()

    from streamer.backends.int8_cache import int8_onnx
    from streamer.export import export
    from streamer.export.formats import ExportRequest

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="fast-drops")
    p.add_argument("--int8", action="store_true")
    p.add_argument("--size", default="1280x720")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--uint8", action="store_true", help="the product's path: uint8 NHWC frames in and out")
    p.add_argument("--depth", type=int, default=2, help="name prefix depth to group by")
    a = p.parse_args()
    w, h = map(int, a.size.split("x"))
    core = ov.Core()
    cfg = {"PERF_COUNT": True, "INFERENCE_NUM_THREADS": a.threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    if a.int8:
        m = core.read_model(str(int8_onnx(a.model)))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{a.model}.onnx"
            export(ExportRequest(model=a.model, format="onnx", precision="fp32", output=path))
            m = core.read_model(str(path))
    m.reshape([1, 3, h, w])
    if a.uint8:
        from streamer.backends.ov_backend import _uint8_io
        m = _uint8_io(m)
    c = core.compile_model(m, "CPU", cfg)
    req = c.create_infer_request()
    x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    if a.uint8:
        x = (x.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    for _ in range(3):
        req.infer({0: x})
    groups: dict[str, float] = collections.defaultdict(float)
    types: dict[str, float] = collections.defaultdict(float)
    t0 = time.perf_counter()
    for _ in range(a.runs):
        req.infer({0: x})
        for pi in req.profiling_info:
            us = pi.real_time.total_seconds() * 1e6
            parts = [s for s in pi.node_name.split("/") if s][: a.depth]
            groups["/".join(parts) if pi.node_name.startswith("/") else f"({pi.node_type}) {pi.node_name[:60]}"] += us
            types[f"{pi.node_type}:{pi.exec_type}"] += us
    wall = (time.perf_counter() - t0) / a.runs * 1e3
    total = sum(groups.values()) / a.runs / 1e3
    print(f"{a.model} {'INT8' if a.int8 else 'FP32'} {w}x{h}: {wall:.1f} ms/frame wall, {total:.1f} ms summed over layers")
    for name, us in sorted(groups.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {us / a.runs / 1e3:7.2f} ms  {name}")
    print("by type:")
    for name, us in sorted(types.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {us / a.runs / 1e3:7.2f} ms  {name}")


if __name__ == "__main__":
    main()
