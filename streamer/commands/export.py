"""`streamer export`: PyTorch weights -> ONNX / ONNX Runtime INT8 / TensorRT engine / Torch-TensorRT."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from streamer.commands import at_least
from streamer.export.formats import CALIB_METHODS, DEFAULT_CALIB_METHOD


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a model to ONNX, ONNX Runtime INT8, TensorRT or Torch-TensorRT",
        description="Export a registered model. Refuses contradictory requests before any work "
                    "(see --list). Writes FILE and FILE.json (the sidecar).")
    p.add_argument("--model", default="fast", help="registered model (see `streamer models`)")
    p.add_argument("--weights", type=Path, help="safetensors file (default: the model's shipped weights)")
    p.add_argument("--format", default="onnx", help="onnx | engine | torchtrt")
    p.add_argument("--precision", default="fp32", help="fp32 | fp16 | int8")
    p.add_argument("--calib", type=Path, help="calibration folder (calib/) or video, for int8")
    p.add_argument("--calib-frames", type=at_least(0), default=32, help="use at most this many calibration frames")
    p.add_argument("--calib-method", default=DEFAULT_CALIB_METHOD, choices=CALIB_METHODS,
                   help="ONNX Runtime INT8 range estimator (default percentile, 99.999: a few outlier "
                        "activations no longer stretch a layer's 256 levels; the input stays within 0.2 of a level)")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--size", help="fixed frame size WIDTHxHEIGHT like every other --size, "
                                      "e.g. 1280x720 (the tensor is then 1x3x720x1280)")
    shape.add_argument("--dynamic", help="TensorRT profile MIN:OPT:MAX, each WIDTHxHEIGHT (batch first "
                                         "if not 1: NxWxH), e.g. 640x352:1280x720:1920x1088")
    p.add_argument("--int8-all", action="store_true",
                   help="int8: quantize the layers the model keeps fp32 too (`fast`: its stem and deepest "
                        "convs; `fast-drops`: also the drop finder and output heads): faster, costs more "
                        "gain; the sidecar's fp32_prefixes says which")
    p.add_argument("--workspace", type=float, help="TensorRT workspace limit in GiB (default 2)")
    p.add_argument("--device", type=int, help="CUDA device index for TensorRT builds")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")
    p.add_argument("-o", "--output", type=Path, help="output file, e.g. engines/fast.onnx")
    p.add_argument("--list", action="store_true", help="show the format table and exit")
    p.add_argument("--json", action="store_true", help="print the sidecar as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamer.errors import ExportError
    from streamer.export import ExportRequest, export, export_formats
    from streamer.export.formats import get_format, parse_dynamic
    from streamer.preprocess.resize import parse_size

    if args.list:
        print(f"{'format':<10}{'suffix':<8}{'precisions':<16}{'gpu':<5}{'extra':<16}description")
        for r in export_formats():
            print(f"{r['format']:<10}{r['suffix']:<8}{r['precisions']:<16}{'yes' if r['gpu'] else 'no':<5}"
                  f"{r['extra']:<16}{r['description']}")
        return 0
    output = args.output
    if output is None:
        suffix = get_format(args.format).suffix
        raise ExportError(f"-o: missing; e.g. -o engines/{args.model}"
                          f"{'-int8' if args.precision == 'int8' else ''}{suffix}")
    req = ExportRequest(
        model=args.model, format=args.format, precision=args.precision, output=output,
        weights=args.weights, calib=args.calib, size=parse_size(args.size)[::-1] if args.size else None,
        dynamic=parse_dynamic(args.dynamic) if args.dynamic else None, workspace_gib=args.workspace,
        device=args.device, calib_frames=args.calib_frames, calib_method=args.calib_method,
        opset=args.opset, int8_all=args.int8_all)
    logging.getLogger().addFilter(_drop_quantizer_chatter)
    result = export(req, progress=_Progress(disable=args.quiet or not sys.stderr.isatty()))
    side = result.sidecar
    if args.json:
        print(json.dumps(json.loads(result.sidecar_path.read_text()), indent=2))
        return 0
    print(f"wrote {result.path} ({result.path.stat().st_size / 1e6:.2f} MB) and {result.sidecar_path}")
    for name, figures in side.parity.items():
        if "psnr_db" in figures:
            print(f"  {name}: PSNR {figures['psnr_db']:.1f} dB, max abs diff {figures['max_abs']:.2g}")
        else:
            print(f"  {name}: PSNR vs fp32 {figures['psnr_vs_fp32_db']:.1f} dB; {figures['corruption']} "
                  f"gain fp32 {figures['gain_fp32_db']:+.2f} dB, int8 {figures['gain_int8_db']:+.2f} dB "
                  f"(INT8 costs {figures['cost_db']:.2f} dB) over {figures['frames']} frames")
    return 0


def _drop_quantizer_chatter(record: logging.LogRecord) -> bool:
    """onnxruntime.quantization logs every bias copy on the root logger at INFO; keep warnings."""
    return record.levelno >= logging.WARNING or "onnxruntime" not in record.pathname


class _Progress:
    """One tqdm bar per phase (TensorRT phases nest; each gets its own bar)."""

    def __init__(self, disable: bool = False) -> None:
        self._bars: dict = {}
        self.disable = disable

    def __call__(self, phase: str, step: int, steps: int) -> None:
        from tqdm import tqdm

        if self.disable:
            return
        bar = self._bars.get(phase)
        if bar is None:
            bar = self._bars[phase] = tqdm(total=max(steps, 1), desc=phase, leave=False)
        bar.total = max(steps, 1)
        bar.n = min(step, bar.total)
        bar.refresh()
        if step >= steps:
            bar.close()
            del self._bars[phase]
