"""ONNX Runtime static INT8 (QDQ) from an fp32 ONNX, and what it costs in PSNR.

Choices (measured on FastNet, 1280x720 and held-out photos; numbers in engines/README.md):

* QDQ format, weights int8 symmetric per output channel (conv weights differ by orders of
  magnitude between channels; per-tensor scales would flatten the small ones).
* Activations: uint8 asymmetric for ONNX Runtime (U8S8 is its fast x86 path, VNNI included, and
  LeakyReLU outputs are lopsided); int8 symmetric for TensorRT (its explicit quantization accepts
  only symmetric int8 Q/DQ).
* Calibration: Percentile (99.999) by default since session 8: rare outlier activations had
  stretched some of min/max's ranges (fast-drops' INT8 drop cost 0.40 -> 0.12 dB, model-log
  E18-E21); MinMax stays selectable. ORT's Entropy picked the same ranges as MinMax at 4x the
  calibration time, so it is refused. Neither method covers activations the calibration frames
  never provoke: the layers whose ranges follow the whole frame's content are kept fp32 by the
  model instead (``ModelSpec.int8_fp32``, e.g. FastNet's deepest convs, session 21).
* Conv, ConvTranspose, LeakyReLU and Add are quantized; the output tail (DepthToSpace, Slice,
  gain·x + offset, Clip) stays fp32: quantizing it adds a second 8-bit rounding of the output
  (PSNR vs fp32 93 -> 55 dB on the current weights, 39.7 -> 38.4 dB on a high-gain probe net)
  and measured no faster.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from streamer.errors import ExportError
from streamer.evaluate.metrics import psnr_db
from streamer.export.calibration import CalibSet
from streamer.export.formats import DEFAULT_CALIB_METHOD, check_calib_method
from streamer.export.onnx_export import onnx_outputs

log = logging.getLogger(__name__)
QUANTIZED_OPS = ["Conv", "ConvTranspose", "LeakyRelu", "Add"]


@dataclass(frozen=True)
class Int8Options:
    """How to quantize; recorded in the sidecar."""

    method: str = DEFAULT_CALIB_METHOD  # vs minmax: drops +0.29 dB, clean +1.4 dB for fast-drops (model-log E21)
    target: str = "ort"  # "ort": uint8 activations; "tensorrt": symmetric int8 activations
    per_channel: bool = True
    fp32_tail: bool = True
    percentile: float = 99.999  # only for method="percentile"
    fp32_prefixes: tuple[str, ...] = ()  # nodes that stay fp32 too (ModelSpec.int8_fp32, keeps_fp32)


def keeps_fp32(node: str, parts: tuple[str, ...]) -> bool:
    """``parts`` entries ending in "/" name a module's subtree ("/stem/"); any other names one
    node exactly ("/Add" is the first top-level Add, not "/Add_1")."""
    return any(node.startswith(p) if p.endswith("/") else node == p for p in parts)


def _reader(calib: CalibSet, input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class FrameReader(CalibrationDataReader):
        """Feeds one 1×3×H×W frame per call, as the runtime will see it; ``set_range`` limits it
        to one pass (``CalibStridedMinMax`` below)."""

        def __init__(self) -> None:
            self._batches = calib.batches()
            self.set_range(0, len(self._batches))

        def __len__(self) -> int:
            return len(self._batches)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._it = iter(self._batches[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch}

        def rewind(self) -> None:
            self.set_range(0, len(self._batches))

    return FrameReader()


def _tail_nodes(model) -> list[str]:
    """The output tail that stays fp32: FastNet's ``/blend/`` nodes except the head's convs (gain
    and offset, clip, the drop fill, depth-to-space); else whatever follows a ``head`` or the
    last Conv."""
    nodes = list(model.graph.node)
    blend = [i for i, n in enumerate(nodes) if n.name.startswith("/blend/")]
    if blend:
        return [n.name for n in nodes[min(blend):]
                if n.op_type != "Conv" or n.name.startswith("/blend/fill/")]
    heads = [i for i, n in enumerate(nodes) if n.name.startswith("/head/")]
    convs = [i for i, n in enumerate(nodes) if n.op_type in ("Conv", "ConvTranspose")]
    last = max(heads) if heads else max(convs, default=-1)
    return [n.name for n in nodes[last + 1:]]


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calib: CalibSet,
                  options: Int8Options = Int8Options()) -> Path:
    """Pre-process (shape inference, fusion), calibrate on ``calib`` and write the QDQ model."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    check_calib_method(options.method)
    if not calib.frames:
        raise ExportError(f"{calib.source}: no calibration frames")
    out_path = Path(out_path)
    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}[options.method]
    symmetric = options.target == "tensorrt"
    extra = {"ActivationSymmetric": symmetric, "WeightSymmetric": True,
             "CalibMovingAverage": False, "CalibPercentile": options.percentile,
             # TensorRT fuses Q/DQ into conv; a bias left float keeps it exact
             "QuantizeBias": not symmetric,
             # one frame per calibration pass: the histogram calibrators otherwise hold every
             # activation of every frame until the end (drn on 35 frames: >24 GB, now 1.8; fast-drops 3.5 GB,
             # now 0.6 GB), and pass by pass they merge into the same ranges (±0.01 dB)
             "CalibStridedMinMax": 1}
    with tempfile.TemporaryDirectory(prefix="streamer-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            # ORT's symbolic shape inference cannot follow PixelUnshuffle's reshapes with free H/W;
            # ONNX's own inference is enough for the fusions and for calibration.
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        except Exception as exc:  # shape inference raises assorted types on odd graphs
            raise ExportError(f"{fp32_path}: ONNX Runtime pre-processing failed ({exc}); "
                              "export the fp32 ONNX again") from exc
        model = onnx.load(str(pre))
        exclude = _tail_nodes(model) if options.fp32_tail else []
        exclude += [n.name for n in model.graph.node
                    if keeps_fp32(n.name, options.fp32_prefixes) and n.name not in exclude]
        chatter = io.StringIO()  # the histogram calibrators print to stdout; keep it for --debug
        try:
            with contextlib.redirect_stdout(chatter):
                quantize_static(
                    str(pre), str(out_path), _reader(calib, model.graph.input[0].name),
                    quant_format=QuantFormat.QDQ, per_channel=options.per_channel,
                    activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=method,
                    op_types_to_quantize=QUANTIZED_OPS, nodes_to_exclude=exclude,
                    extra_options=extra,
                )
        except Exception as exc:  # quantize_static surfaces onnxruntime/numpy errors untyped
            raise ExportError(f"{out_path}: INT8 quantization failed ({str(exc).splitlines()[0]})") from exc
        if chatter.getvalue():
            log.debug("onnxruntime calibration: %s", chatter.getvalue().strip())
    return out_path


@dataclass(frozen=True)
class Int8Report:
    """What INT8 costs: closeness to fp32, and the restoration gain on synthetic dirt for both."""

    psnr_vs_fp32_db: float
    max_abs_vs_fp32: float
    dirty_psnr_db: float  # corrupted input vs clean, before restoration
    gain_fp32_db: float
    gain_int8_db: float
    frames: int
    corruption: str

    @property
    def cost_db(self) -> float:
        return self.gain_fp32_db - self.gain_int8_db

    def as_dict(self) -> dict:
        return asdict(self) | {"cost_db": self.cost_db}


def int8_report(fp32_path: str | Path, int8_path: str | Path, clean: list[np.ndarray], *,
                corruption: str = "dirt", seed: int = 1234, threads: int = 2,
                frame_px: float | None = None) -> Int8Report:
    """Run both models on seeded corrupted copies of ``clean`` (uint8 H×W×3) frames, the
    corruption sized for a frame ``frame_px`` wide (None: each frame's own size).

    Gains are PSNR(restored, clean) − PSNR(corrupted, clean), averaged over frames.
    """
    from streamer.synth import corrupt

    dirty, targets = [], []
    for i, frame in enumerate(clean):
        c = frame.astype(np.float32) / 255.0
        d, _ = corrupt(c, corruption, np.random.default_rng([seed, i]), frame_px=frame_px)
        d = np.round(np.clip(d, 0, 1) * 255.0) / 255.0  # the camera delivers 8-bit frames
        dirty.append(d.transpose(2, 0, 1)[None].astype(np.float32))
        targets.append(c.transpose(2, 0, 1)[None])
    out32 = onnx_outputs(fp32_path, dirty, threads)
    out8 = onnx_outputs(int8_path, dirty, threads)
    base = [psnr_db(d, t) for d, t in zip(dirty, targets)]
    g32 = [psnr_db(o, t) - b for o, t, b in zip(out32, targets, base)]
    g8 = [psnr_db(o, t) - b for o, t, b in zip(out8, targets, base)]
    return Int8Report(
        psnr_vs_fp32_db=float(np.mean([psnr_db(a, b) for a, b in zip(out8, out32)])),
        max_abs_vs_fp32=max(float(np.abs(a - b).max()) for a, b in zip(out8, out32)),
        dirty_psnr_db=float(np.mean(base)), gain_fp32_db=float(np.mean(g32)),
        gain_int8_db=float(np.mean(g8)), frames=len(clean), corruption=corruption,
    )
