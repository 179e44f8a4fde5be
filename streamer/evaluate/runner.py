"""`streamer eval`: corrupt clean photos with the seeded synthesis, restore, score, tabulate.

The corrupted inputs are exactly what `streamer synth --seed S` writes for the same files
(seeded by seed and file stem). Split ``val`` is the training split's validation photos (never
trained on); ``all`` is every photo in the folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import cv2
import numpy as np
import torch

from streamer.errors import ConfigError, looked_in
from streamer.evaluate.baselines import available_baselines
from streamer.evaluate.compare import crop_scores, paired_difference
from streamer.evaluate.metrics import EVAL_MODULES, psnr_db, require_eval, ssim, uqi
from streamer.evaluate.report import crop_strip, write_report
from streamer.evaluate.restore import load_model, restore_image
from streamer.evaluate.table import INPUT_ROW, format_table, summarize, summarize_clean
from streamer.models import get_spec
from streamer.models.weights import sha256_file
from streamer.synth import CORRUPTIONS
from streamer.synth.pairs import corrupt_file_image, image_rng, to_uint8
from streamer.train.data import list_images, read_rgb, split

BACKENDS = ("torch", "onnxruntime", "openvino")
NO_CORRUPTION = "none"  # only the clean-input check: how much a model changes clean frames


@dataclass(frozen=True)
class EvalRequest:
    clean: Path
    corruption: str
    models: tuple[str, ...] = ()
    weights: dict[str, Path] = field(default_factory=dict)  # model name -> weights override
    backend: str = "torch"
    seed: int = 0
    heavy: bool = False
    split: Literal["val", "train", "all"] = "val"
    limit: int | None = None
    crop: int = 0  # centre crop side in px; 0 = whole image
    crops: int = 1  # crops per photo: the centre one, then seeded positions (needs crop > 0)
    frame_px: int = 1280  # corruption sized for a frame this wide; 0 = each image's own size
    baselines: bool = True
    bm3d: bool = True
    clean_check: bool = True
    report: Path | None = None
    threads: int = 1
    int8: bool | str = False  # onnxruntime/openvino: the calibrated INT8 model ("all": every layer)


def select_photos(req: EvalRequest) -> list[Path]:
    files = list_images(req.clean)
    if req.split != "all":
        train, val = split(files)
        files = val if req.split == "val" else train
        if not files:
            raise ConfigError(f"{req.clean}: no photo falls in the {req.split} split; use --split all")
    return files[: req.limit] if req.limit else files


def centre_crop(img: np.ndarray, side: int) -> np.ndarray:
    if side <= 0:
        return img
    h, w = img.shape[:2]
    s_h, s_w = min(side, h), min(side, w)
    y, x = (h - s_h) // 2, (w - s_w) // 2
    return np.ascontiguousarray(img[y:y + s_h, x:x + s_w])


def photo_crops(img: np.ndarray, side: int, count: int, seed: int, stem: str) -> list[np.ndarray]:
    """The centre crop, then ``count - 1`` crops at positions drawn from (seed, stem).

    One centre crop per photo scores each scene once; a ship gate on the worst clean crop then
    hinges on one window of one photo. More crops per photo make the tail a statistic.
    """
    out = [centre_crop(img, side)]
    if count > 1:
        h, w = img.shape[:2]
        s_h, s_w = min(side, h), min(side, w)
        rng = image_rng(seed, f"{stem}#crops")
        for _ in range(count - 1):
            y, x = int(rng.integers(0, h - s_h + 1)), int(rng.integers(0, w - s_w + 1))
            out.append(np.ascontiguousarray(img[y:y + s_h, x:x + s_w]))
    return out


def _worst_window(mask: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left of the side×side window with the most corruption (for the report crops)."""
    h, w = mask.shape[:2]
    s = min(side, h, w)
    box = cv2.boxFilter(mask[..., 0].astype(np.float32), -1, (s, s), normalize=False,
                        borderType=cv2.BORDER_CONSTANT)
    box[: s // 2], box[h - (s - s // 2) + 1:] = -1, -1
    box[:, : s // 2], box[:, w - (s - s // 2) + 1:] = -1, -1
    cy, cx = np.unravel_index(int(np.argmax(box)), box.shape)
    return int(max(0, min(h - s, cy - s // 2))), int(max(0, min(w - s, cx - s // 2)))


def _scores(result: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    return psnr_db(result, reference), ssim(result, reference), uqi(result, reference)


def model_file(entry: str) -> Path | None:
    """A ``--model`` given as a file (trained weights, or an exported ONNX such as an INT8 one to
    check before shipping it), or None for a registered name."""
    path = Path(entry)
    if path.suffix not in {".safetensors", ".onnx", ".engine"}:
        return None
    if not path.is_file():
        raise ConfigError(f"--model {entry}: file not found{looked_in(path)}")
    if path.suffix == ".engine":
        raise ConfigError(f"--model {entry}: eval runs on the CPU backends, not TensorRT; score the ONNX "
                          "the engine was built from (`--model FILE.onnx --backend onnxruntime`), and "
                          "time the engine with `streamer bench --backend tensorrt`")
    return path


def _weights_of(name: str, req: EvalRequest) -> Path | None:
    """The file a row was computed with: the model file itself, an override, or the shipped one."""
    return model_file(name) or req.weights.get(name) or get_spec(name).weights_path


def _backend_method(name: str, req: EvalRequest) -> Callable[[np.ndarray], np.ndarray]:
    """The model on a deployment runtime (float frames in, as torch gets them)."""
    from streamer.backends import open_backend
    from streamer.preprocess.tiles import run_padded

    weights = req.weights.get(name)
    is_file = model_file(name) is not None  # the file names its own architecture
    backend = open_backend(str(weights) if weights and not is_file else name, req.backend,
                           arch=None if is_file else name, threads=req.threads, int8=req.int8)

    def restore(img: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)
        out = run_padded(backend, batch, int(getattr(backend, "multiple", 1)))[0]
        return np.clip(out.transpose(1, 2, 0), 0.0, 1.0)

    return restore


def model_restorers(req: EvalRequest) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """name -> float H×W×3 [0,1] restorer for each of ``req.models`` on ``req.backend``."""
    if req.backend not in BACKENDS:
        raise ConfigError(f"eval backend {req.backend!r}: choose one of {', '.join(BACKENDS)}")
    if req.int8 and req.backend == "torch":
        raise ConfigError("eval --int8 runs on --backend onnxruntime or openvino")
    torch.set_num_threads(req.threads)
    if req.backend != "torch":
        return {name: _backend_method(name, req) for name in req.models}
    restorers = {}
    for name in req.models:  # in the order given: the table's rows
        if model_file(name) is not None:
            restorers[name] = _backend_method(name, req)
            continue
        net, spec = load_model(name, req.weights.get(name))
        restorers[name] = lambda img, net=net, m=spec.multiple: restore_image(net, img, m)
    return restorers


def _inputs(req: EvalRequest, files: list[Path]):
    """(photo, crop index, float crop) for every crop of every photo, read one photo at a time."""
    for path in files:
        for k, crop in enumerate(photo_crops(read_rgb(path), req.crop, req.crops, req.seed, path.stem)):
            yield path, k, crop


def run_eval(req: EvalRequest, progress: Callable[[str], None] | None = None,
             files: list[Path] | None = None) -> dict:
    """Returns the result dict (rows, clean_rows, per-image scores, table text). ``files``: the
    photos when the caller already has ``select_photos(req)`` (the CLI counts them for its bar)."""
    clean_only = req.corruption == NO_CORRUPTION
    if req.corruption not in CORRUPTIONS and not clean_only:
        raise ConfigError(f"unknown corruption {req.corruption!r}; choose one of "
                          f"{', '.join(CORRUPTIONS)} or {NO_CORRUPTION} (the clean-input check only)")
    if clean_only and not (req.models and req.clean_check):
        raise ConfigError("--corruption none runs only the clean-input check: name a --model")
    if req.crops < 1 or (req.crops > 1 and req.crop <= 0):
        raise ConfigError(f"--crops {req.crops}: give a count >= 1, and more than one crop per photo "
                          "needs --crop SIDE (a whole photo has only one)")
    for module in EVAL_MODULES:  # a missing eval extra: one line now, not after the models load
        require_eval(module)
    methods = model_restorers(req)  # bad options fail before any file is read
    files = select_photos(req) if files is None else files
    if req.baselines and not clean_only:
        methods |= available_baselines(include_bm3d=req.bm3d)
    scores: dict[str, list[tuple[float, ...]]] = {} if clean_only else {INPUT_ROW: []} | {m: [] for m in methods}
    clean_scores: dict[str, list[tuple[float, ...]]] = {m: [] for m in req.models} if req.clean_check else {}
    seconds = {m: 0.0 for m in methods}
    strips: dict[str, np.ndarray] = {}
    per_image = []
    smaller: set[str] = set()  # photos under --crop on a side: that side is used whole
    for path, k, clean in _inputs(req, files):
        if req.crop and min(clean.shape[:2]) < req.crop:
            smaller.add(path.name)
        tag = path.stem if k == 0 else f"{path.stem}#{k}"
        ref = to_uint8(clean)
        row: dict = {"file": path.name, "crop_index": k}
        outputs, window = {}, None
        if not clean_only:
            dirty, mask = corrupt_file_image(clean, tag, req.corruption, req.seed, heavy=req.heavy,
                                             frame_px=req.frame_px or None)
            dirty8 = to_uint8(dirty)
            row[INPUT_ROW] = _scores(dirty8, ref)
            scores[INPUT_ROW].append(row[INPUT_ROW])
            outputs["corrupted"] = dirty8
            for name, fn in methods.items():
                t0 = time.perf_counter()
                outputs[name] = to_uint8(fn(dirty))
                seconds[name] += time.perf_counter() - t0
                row[name] = _scores(outputs[name], ref)
                scores[name].append(row[name])
            window = _worst_window(mask, 192)
        for name in clean_scores:
            back = to_uint8(methods[name](clean))
            clean_scores[name].append(_scores(back, ref))
            row[f"clean {name}"] = clean_scores[name][-1]
            if clean_only:
                outputs[name] = back
        per_image.append(row)
        if req.report is not None and k == 0 and len(strips) < 4:  # the first four photos
            y, x = window or (0, 0)
            panels = {"clean": ref} | outputs
            strips[tag] = crop_strip({p: v[y:y + 192, x:x + 192] for p, v in panels.items()})
        if progress and k == req.crops - 1:
            progress(path.name)
    result = {
        "corruption": req.corruption, "heavy": req.heavy, "seed": req.seed, "split": req.split,
        "crop": req.crop, "crops": req.crops, "frame_px": req.frame_px, "int8": req.int8, "backend": req.backend, "n_images": len(files),
        "crop_smaller_photos": len(smaller),
        "models": {name: {"weights": str(p), "sha256": sha256_file(p)}
                   for name in req.models if (p := _weights_of(name, req)) is not None},
        "rows": summarize(scores) if scores else [],
        "clean_rows": summarize_clean(clean_scores) if clean_scores else [],
        "ms_per_image": {m: 1000.0 * s / max(1, len(per_image)) for m, s in seconds.items()},
        "per_image": per_image,
    }
    for row in result["rows"]:  # how far the photos' luck moves each gain
        if row["method"] != INPUT_ROW and "psnr_gain" in row:
            gains = crop_scores(per_image, row["method"])
            ci = paired_difference(dict.fromkeys(gains, 0.0), gains)
            if ci.has_interval:  # one photo has none
                row["psnr_gain_ci95"] = [ci.low, ci.high]
    result["table"] = format_table(result)
    if req.report is not None:
        result["report_files"] = [str(p) for p in write_report(req.report, result, strips, result["table"])]
    return result
