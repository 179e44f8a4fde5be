"""Torch-TensorRT (dynamo IR): export the PyTorch module, compile it, save an exported program.

We run ``torch.export`` ourselves (:func:`export_program`) instead of letting
``torch_tensorrt.compile(ir="dynamo")`` trace: its trace gives H and W a plain min..max range, and
FastNet needs multiples of 16 (``ModelSpec.multiple``), so torch.export refused every dynamic
profile ("Constraints violated ... 16*_input_2"); an example of batch 1 also fixed the batch.
INT8 goes through NVIDIA ModelOpt post-training quantization (the path Torch-TensorRT documents
for the dynamo IR): fake-quant nodes calibrated on the calibration frames, then the same export.
Everything here is imported on use; ``torch_tensorrt`` is in the ``tensorrt`` extra.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from streamer.errors import EngineError, ExportError, install_extra
from streamer.export.calibration import CalibSet

Shape = tuple[int, int, int]  # N, H, W (C is always 3)
MISSING = f"Torch-TensorRT export needs the tensorrt extra: {install_extra('tensorrt')}"
MODELOPT_MISSING = ("--format torchtrt --precision int8: needs NVIDIA ModelOpt: pip install nvidia-modelopt; "
                    "or use --format engine --precision int8")
# the torch-tensorrt releases this file is written for, [from, to); pyproject's tensorrt extra
# pins the same and says why (2.6: save() without example inputs; 2.13: TensorRT 11)
SUPPORTED = ((2, 6), (2, 13))


def import_torch_tensorrt() -> Any:
    try:
        import torch_tensorrt  # optional extra
    except ImportError as exc:
        raise ExportError(MISSING) from exc
    return torch_tensorrt


def _import_modelopt() -> tuple[Any, Any]:
    """(``modelopt.torch.quantization``, its ``export_torch_mode``), or ExportError in one line."""
    try:
        import modelopt.torch.quantization as mtq
        from modelopt.torch.quantization.utils import export_torch_mode
    except ImportError as exc:  # ModuleNotFoundError too
        raise ExportError(MODELOPT_MISSING) from exc
    return mtq, export_torch_mode


@dataclass(frozen=True)
class TorchTrtResult:
    path: Path
    torch_tensorrt_version: str
    tensorrt_version: str | None
    profile: dict[str, list[int]]


def export_program(net: nn.Module, profile: tuple[Shape, Shape, Shape], multiple: int = 1,
                   device: str = "cpu") -> Any:
    """``torch.export`` of ``net`` that takes every N×3×H×W of ``profile`` (min, opt, max N×H×W).

    H and W are ``multiple`` × a Dim (FastNet: 16·k), so the exporter can prove the net's
    space-to-depth and pooling steps for every size in range. The example keeps each dynamic
    axis at 2 or more: torch.export fixes an axis whose example is 0 or 1 (a batch-1 example made
    the batch a constant). An axis with min == max stays static. Needs only torch.
    """
    import torch
    from torch.export import Dim

    lo, opt, hi = profile
    spec: dict[int, Any] = {}
    example: list[int] = []
    for i, (dim, name, step) in enumerate(((0, "batch", 1), (2, "height", multiple), (3, "width", multiple))):
        a, o, b = lo[i], opt[i], hi[i]
        if not 1 <= a <= o <= b:
            raise ExportError(f"profile {_shapes(profile)}: {name} must grow from min to opt to max")
        if any(v % step for v in (a, o, b)):
            raise ExportError(f"profile {_shapes(profile)}: {name} must be a multiple of {step} for this model")
        if a == b:
            example.append(a)
            continue
        k = min(max(o // step, a // step, 2), b // step)  # 2+, inside the range: not specialized
        var = Dim(name, min=a // step, max=b // step)
        spec[dim] = var if step == 1 else step * var
        example.append(k * step)
    n, h, w = example
    x = torch.rand(n, 3, h, w, device=device)
    # positional form: independent of the name of forward's argument
    return torch.export.export(net, (x,), dynamic_shapes=(spec,) if spec else None, strict=False)


def _shapes(profile: tuple[Shape, Shape, Shape]) -> str:
    return " .. ".join("x".join(map(str, s)) for s in profile)


def _version(text: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def precision_settings(precision: str, torch_tensorrt_version: str) -> dict[str, Any]:
    """``dynamo.compile`` keywords that choose the precision, for this torch-tensorrt.

    ``enabled_precisions`` lets TensorRT pick fp16/int8 kernels (weak typing, as the engine path's
    builder flags). 2.10 made explicit typing the default, under which any ``enabled_precisions``
    but {float32} is an AssertionError, so we ask for weak typing by name (the keyword exists from
    2.6, default False until 2.9; deprecated in 2.10-2.12, still working on TensorRT 10). 2.13
    removed both (TensorRT 11 has no weak typing; a stray ``enabled_precisions`` lands in
    ``**kwargs`` and fp16 would quietly build as fp32), so versions outside :data:`SUPPORTED` are
    refused rather than guessed at.
    """
    import torch

    version = _version(torch_tensorrt_version)
    if not SUPPORTED[0] <= version < SUPPORTED[1]:
        (a, b), (c, d) = SUPPORTED
        raise ExportError(f"--format torchtrt: torch-tensorrt {torch_tensorrt_version} is not supported "
                          f"(streamer works with {a}.{b} up to {c}.{d - 1}, TensorRT 10); "
                          f"{install_extra('tensorrt')}, or use --format engine")
    precisions = {"fp32": {torch.float32}, "fp16": {torch.float16, torch.float32},
                  "int8": {torch.int8, torch.float16, torch.float32}}[precision]
    return {"enabled_precisions": precisions, "use_explicit_typing": False,
            "disable_tf32": precision == "fp32"}  # fp32 means fp32, as in the engine path


def _quantize_int8(net: nn.Module, calib: CalibSet, device: str, mtq: Any) -> nn.Module:
    import torch

    def forward_loop(model: nn.Module) -> None:
        with torch.no_grad():
            for batch in calib.batches():
                model(torch.from_numpy(batch).to(device))

    return mtq.quantize(net, mtq.INT8_DEFAULT_CFG, forward_loop)


def compile_torchtrt(net: nn.Module, out_path: str | Path, *, precision: str,
                     profile: tuple[Shape, Shape, Shape], multiple: int = 1, workspace_gib: float = 2.0,
                     device: int = 0, calib: CalibSet | None = None) -> TorchTrtResult:
    """Export with :func:`export_program`, compile with ``torch_tensorrt.dynamo.compile``, save
    an exported program (.ep). ``multiple``: the model's H/W step (``ModelSpec.multiple``)."""
    out_path = Path(out_path)
    if precision == "int8":  # what int8 needs beyond the extra: one line now, not a traceback later
        if calib is None:
            raise ExportError(f"{out_path}: int8 needs calibration frames (--calib)")
        mtq, export_torch_mode = _import_modelopt()
    torch_tensorrt = import_torch_tensorrt()
    version = str(torch_tensorrt.__version__)
    settings = precision_settings(precision, version)
    import torch

    dev = f"cuda:{device}"
    net = net.eval().float().to(dev)
    lo, opt, hi = ((n, 3, h, w) for n, h, w in profile)
    inputs = [torch_tensorrt.Input(min_shape=lo, opt_shape=opt, max_shape=hi, dtype=torch.float32)]
    settings |= dict(inputs=inputs, workspace_size=int(workspace_gib * (1 << 30)),
                     device=torch_tensorrt.Device(dev), min_block_size=1)
    try:
        with torch.no_grad():
            if precision == "int8":
                net = _quantize_int8(net, calib, dev, mtq)
                with export_torch_mode():
                    program = export_program(net, profile, multiple, device=dev)
                    compiled = torch_tensorrt.dynamo.compile(program, **settings)
            else:
                program = export_program(net, profile, multiple, device=dev)
                compiled = torch_tensorrt.dynamo.compile(program, **settings)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            # retrace=False: serialize the compiled graph with its symbolic batch/H/W. 2.10 made
            # retrace=True the default (pytorch/TensorRT PR 3875), which re-exports from the example
            # inputs and fixes the shapes to theirs. From 2.6 on retrace=False takes no inputs
            # (torch_tensorrt/_compile.py save(): "inputs or arg_inputs is not necessary"); 2.4
            # and 2.5 refused a GraphModule without them, hence the tensorrt extra's floor of 2.6
            torch_tensorrt.save(compiled, str(out_path), output_format="exported_program", retrace=False)
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:  # it asserts on settings too
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"{out_path}: Torch-TensorRT compile failed ({first})") from exc
    try:
        import tensorrt

        trt_version: str | None = str(tensorrt.__version__)
    except ImportError:
        trt_version = None
    return TorchTrtResult(out_path, version, trt_version,
                          {"min": list(lo), "opt": list(opt), "max": list(hi)})


def load_torchtrt(path: str | Path, device: int = 0) -> nn.Module:
    """Reload a saved program (needs torch_tensorrt imported so its TensorRT ops are registered)."""
    try:
        torch_tensorrt = import_torch_tensorrt()
    except ExportError as exc:
        raise EngineError(f"{path}: {MISSING}") from exc
    try:
        return torch_tensorrt.load(str(path)).module().to(f"cuda:{device}")
    except (RuntimeError, ValueError, OSError) as exc:
        raise EngineError(f"{path}: cannot load the Torch-TensorRT program ({str(exc).splitlines()[0]}); "
                          "rebuild it on this device") from exc
