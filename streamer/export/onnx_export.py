"""PyTorch -> ONNX (opset >= 17), checked by onnx.checker and against PyTorch before it is kept.

We use the TorchScript exporter (``dynamo=False``): for these plain conv nets it writes opset 17
natively in well under a second, where the dynamo exporter takes ~15 s on 2 cores and only
emits opset 18 (then down-converts). Layout: ``input`` / ``output``, N×3×H×W float32 in [0, 1].
"""

from __future__ import annotations

import inspect
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamer.backends.ort_backend import ort_reason
from streamer.errors import ExportError
from streamer.evaluate.metrics import psnr_db

INPUT, OUTPUT = "input", "output"
FP32_MIN_PSNR_DB = 50.0


@dataclass(frozen=True)
class Parity:
    """How close one runtime's output is to another's, over a few probe inputs."""

    max_abs: float
    psnr_db: float
    shapes: list[list[int]]

    def as_dict(self) -> dict:
        return asdict(self)


_EXPORT_LOCK = threading.Lock()


def torchscript_export(module: nn.Module, args: tuple, f, **kwargs) -> None:
    """``torch.onnx.export`` with the TorchScript exporter on every torch we support: 2.5 and newer
    take ``dynamo=False`` (2.9 made the dynamo exporter the default); older ones (2.2 has been
    tested, as in older NVIDIA Jetson wheels) have no such argument and only that exporter.

    One export at a time per process: the exporter keeps global state (``GLOBALS.in_onnx_export``),
    and two `Cleaner`s opened in two threads would otherwise fail with an AssertionError."""
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with _EXPORT_LOCK:
        torch.onnx.export(module, args, f, **kwargs)


def export_onnx(net: nn.Module, path: str | Path, *, shape: tuple[int, int, int],
                dynamic: bool, opset: int = 17, metadata: dict[str, str] | None = None) -> Path:
    """Write ``net`` to ``path``; ``shape`` (N, H, W) is the trace shape (the fixed shape if not dynamic).

    Dynamic exports keep batch, height and width free (TensorRT profiles bound them later).
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, h, w = shape
    net = net.eval().float().cpu()
    probe = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(0))
    axes = {INPUT: {0: "batch", 2: "height", 3: "width"},
            OUTPUT: {0: "batch", 2: "height", 3: "width"}} if dynamic else None
    tmp = path.with_name(path.name + ".tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter deprecation chatter; the checker below decides
            torchscript_export(net, (probe,), str(tmp), opset_version=opset, input_names=[INPUT],
                               output_names=[OUTPUT], dynamic_axes=axes, do_constant_folding=True)
        model = onnx.load(str(tmp))
        onnx.checker.check_model(model, full_check=True)
    except (RuntimeError, ValueError, onnx.checker.ValidationError) as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{path}: ONNX export failed ({str(exc).splitlines()[0]}); "
                          "exported models must use standard ONNX ops only") from exc
    model.producer_name = "streamer"
    for key, value in (metadata or {}).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, str(value)
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path


def ort_session(path: str | Path, threads: int = 2):
    """A CPU ONNX Runtime session with full graph optimisation (what the CPU backend uses too)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors (Fail, InvalidGraph, ...)
        raise ExportError(f"{path}: ONNX Runtime cannot load it ({ort_reason(exc)})") from exc


def probe_inputs(shapes: list[tuple[int, int, int]], seed: int = 0) -> list[np.ndarray]:
    """Seeded smooth+noisy images: natural-looking ranges, not only uniform noise."""
    rng = np.random.default_rng(seed)
    out = []
    for n, h, w in shapes:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = 0.5 + 0.4 * np.sin(xx / max(w, 1) * 6.28 * rng.uniform(0.5, 3))[None] * \
            np.cos(yy / max(h, 1) * 6.28 * rng.uniform(0.5, 3))[None]
        x = base[None] + 0.15 * rng.standard_normal((n, 3, h, w)).astype(np.float32)
        out.append(np.clip(x, 0.0, 1.0).astype(np.float32))
    return out


def compare(outputs_a: list[np.ndarray], outputs_b: list[np.ndarray]) -> Parity:
    """Worst max-abs and PSNR over pairs of outputs."""
    max_abs = max(float(np.max(np.abs(a - b))) for a, b in zip(outputs_a, outputs_b))
    worst = min(psnr_db(a, b) for a, b in zip(outputs_a, outputs_b))
    return Parity(max_abs, worst, [list(a.shape) for a in outputs_a])


def torch_outputs(net: nn.Module, inputs: list[np.ndarray]) -> list[np.ndarray]:
    net = net.eval().float().cpu()
    with torch.no_grad():
        return [net(torch.from_numpy(x)).numpy() for x in inputs]


def onnx_outputs(path: str | Path, inputs: list[np.ndarray], threads: int = 2) -> list[np.ndarray]:
    sess = ort_session(path, threads)
    name = sess.get_inputs()[0].name
    return [sess.run(None, {name: x})[0] for x in inputs]


def check_parity(path: str | Path, net: nn.Module, shapes: list[tuple[int, int, int]],
                 min_psnr_db: float = FP32_MIN_PSNR_DB) -> Parity:
    """ONNX Runtime vs PyTorch on seeded probes at each shape; below ``min_psnr_db`` is an error."""
    inputs = probe_inputs(shapes)
    parity = compare(onnx_outputs(path, inputs), torch_outputs(net, inputs))
    if parity.psnr_db < min_psnr_db:
        raise ExportError(f"{path}: ONNX output differs from PyTorch (PSNR {parity.psnr_db:.1f} dB "
                          f"< {min_psnr_db:.0f} dB, max abs {parity.max_abs:.2g}); the export is "
                          "wrong, report it with the model name")
    return parity


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
