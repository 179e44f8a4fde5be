"""ONNX Runtime inference: CPU EP by default; CUDA / TensorRT EPs first when asked and present.

A registered model run with ``--backend onnxruntime`` is exported in memory (TorchScript
exporter, ~0.5 s for FastNet); `streamer export` makes the files you deploy.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from pathlib import Path

import numpy as np

from streamer.backends.base import fixed_size_error
from streamer.errors import EngineError

log = logging.getLogger(__name__)


def ort_reason(exc: BaseException, limit: int = 200, lines: int = 1) -> str:
    """ONNX Runtime's error without its C++ source location and signature, which fill the first
    200 characters of e.g. "[ONNXRuntimeError] : 1 : FAIL : /onnxruntime_src/…/model.cc:181
    onnxruntime::Model::Model(onnx::ModelProto&&, …) Unsupported model IR version: 14, max
    supported IR version: 11" and hid the part a user can act on. ``lines``: how many of its lines
    to join (a run error's second one says which dimension: "index: 0 Got: 2 Expected: 1")."""
    first = " ".join(line.strip() for line in str(exc).strip().splitlines()[:lines])
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", first or type(exc).__name__)
    where = re.match(r"(?:Load model from \S+ failed:)?\s*/\S+:\d+ [\w:~<>]+\(", text)
    if where:  # skip past the signature's balanced parentheses
        depth, i = 1, where.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        text = text[i:].strip() or text
    return text[:limit]


def onnx_bytes(module: "object", opset: int = 17) -> bytes:
    """Export an nn.Module with dynamic batch, height and width to ONNX in memory."""
    import torch

    from streamer.export.onnx_export import torchscript_export  # here: that module imports this one

    buf = io.BytesIO()
    dummy = torch.rand(1, 3, 64, 64)
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torchscript_export(module.eval(), (dummy,), buf, input_names=["input"],
                           output_names=["output"], opset_version=opset,
                           dynamic_axes={"input": axes, "output": axes})
    return buf.getvalue()


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, model: bytes | str | Path, *, device: str = "cpu", threads: int = 0,
                 multiple: int = 1, label: str = "") -> None:
        import onnxruntime as ort

        self.label = label or (str(model) if not isinstance(model, bytes) else "model")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # no busy-waiting between ops: decode and encode threads need those cycles (measured on
        # 2 cores at 720p: 2.2 vs 1.5 fps for the whole pipeline)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            gpu = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
            if not gpu:
                raise EngineError(f"{self.label}: onnxruntime has no CUDA provider here "
                                  f"(available: {', '.join(available)}); install onnxruntime-gpu "
                                  "or use --device cpu")
            index = int(device.split(":", 1)[1]) if ":" in device else 0
            providers = [(p, {"device_id": index}) for p in gpu] + providers
        source = model if isinstance(model, bytes) else str(model)
        if not isinstance(model, bytes) and not Path(model).is_file():
            raise EngineError(f"{model}: ONNX file not found; export it with `streamer export`")
        try:
            self.session = ort.InferenceSession(source, opts, providers=providers)
        except Exception as exc:  # ORT raises its own untyped errors for bad files
            raise EngineError(f"{self.label}: onnxruntime cannot load it ({ort_reason(exc)}); "
                              "re-export the model") from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        not_ours = "this ONNX file is not a streamer restoration model; export one with `streamer export`"
        if len(inputs) != 1 or len(outputs) != 1:
            raise EngineError(f"{self.label}: has {len(inputs)} inputs and {len(outputs)} outputs, "
                              f"expected one picture in and one out; {not_ours}")
        inp, out = inputs[0], outputs[0]
        if len(inp.shape) != 4 or inp.shape[1] not in (3, "3"):
            raise EngineError(f"{self.label}: input {inp.name} has shape {inp.shape}, expected "
                              f"N×3×H×W; {not_ours}")
        # a classifier or detector has the right input but not a same-size picture out
        static = all(isinstance(d, int) for d in (*inp.shape[2:], *out.shape[2:])) if len(out.shape) == 4 else False
        if (len(out.shape) != 4 or out.shape[1] not in (3, "3")
                or (static and list(out.shape[2:]) != list(inp.shape[2:]))):
            raise EngineError(f"{self.label}: output {out.name} has shape {out.shape} for input "
                              f"{inp.shape}, expected the same N×3×H×W; {not_ours}")
        self.input_name = inp.name
        self.fp16_io = inp.type == "tensor(float16)"
        h, w = inp.shape[2], inp.shape[3]
        self.input_hw = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        self.max_batch = inp.shape[0] if isinstance(inp.shape[0], int) else 0  # export --size: 1
        meta = self.session.get_modelmeta().custom_metadata_map
        self.multiple = int(meta.get("multiple", multiple) or multiple)
        self.providers = self.session.get_providers()
        log.debug("%s: onnxruntime providers %s", self.label, self.providers)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = batch.astype(np.float16 if self.fp16_io else np.float32, copy=False)
        if self.input_hw and tuple(x.shape[2:]) != self.input_hw:
            raise EngineError(fixed_size_error(self.label, self.input_hw, tuple(x.shape[2:])))
        try:
            out = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        except Exception as exc:  # ORT's own untyped errors (InvalidArgument, Fail, ...)
            raise EngineError(f"{self.label}: onnxruntime cannot run a {'x'.join(map(str, x.shape))} batch "
                              f"({ort_reason(exc, lines=2)})") from exc
        return out.astype(np.float32, copy=False)

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]

    def __enter__(self) -> "OrtBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
