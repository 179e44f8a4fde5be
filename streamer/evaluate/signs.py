"""`streamer eval-signs`: can a sign still be read after dirt or rain, and after restoration?

The DRN case study judged de-raining by what a car does with the frame (detection, sign
classification), not by PSNR alone. This is the offline, license-free version of that check:
paste a sign with a known legend into each validation photo, corrupt it with the same seeded
synthesis as `streamer eval`, restore, and read the panel with Tesseract OCR. Reported per
method: character accuracy (1 − edit distance / length) and the share of legends read exactly.

The legend is drawn in OpenCV's Hershey *Duplex* face on plain panels, a different face and
layout from the training's pasted panels (Simplex, random capitals; `train/negatives.py`), so
the check does not reward memorised glyphs. Tesseract is an optional system tool
(``apt-get install tesseract-ocr``, ``pip install -e '.[ocr]'``).
"""

from __future__ import annotations

import os
import shutil
import zlib
from typing import Callable

import cv2
import numpy as np

from streamer.errors import ConfigError, install_extra
from streamer.evaluate.runner import INPUT_ROW, EvalRequest, centre_crop, model_restorers, select_photos
from streamer.synth.pairs import corrupt_file_image, to_uint8
from streamer.train.data import read_rgb

LEGENDS = ("STOP", "NO PARKING", "EXIT 24", "SPEED LIMIT 50", "ONE WAY", "BUS ONLY", "KEEP RIGHT",
           "YIELD", "NO ENTRY", "SCHOOL ZONE", "DETOUR", "TOLL 2 KM", "AIRPORT 7", "LANE CLOSED")
LETTER_PX = (10, 14, 20)  # cap height: a sign far off, mid-range, near, in a 720p frame
CROP_PX = 384
_PANELS = ((238, 238, 232), (250, 214, 40), (226, 228, 232))  # white, yellow, light grey
_FONT = cv2.FONT_HERSHEY_DUPLEX
_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
CLEAN_ROW = "clean (no corruption)"


def _tesseract():
    """pytesseract with a working ``tesseract`` binary, or one clear error."""
    try:
        import pytesseract
    except ImportError:
        raise ConfigError(f"eval-signs reads signs with Tesseract: {install_extra('ocr')} "
                          "and apt-get install tesseract-ocr") from None
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise ConfigError("eval-signs needs the tesseract program: apt-get install tesseract-ocr")
    # one small line of text per call: Tesseract's OpenMP threads only contend (its docs say so)
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    return pytesseract


def paste_legend(img: np.ndarray, text: str, letter_px: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``img`` (float H×W×3 [0,1]) with a panel carrying ``text``; returns it and the panel's
    box (y, x, h, w). Letters are dark, the panel lit like the scene around it."""
    scale = cv2.getFontScaleFromHeight(_FONT, letter_px, 2)
    thick = max(1, round(letter_px / 9))
    (tw, th), _ = cv2.getTextSize(text, _FONT, scale, thick)
    pad = letter_px // 2 + 2
    ph, pw = th + 2 * pad, tw + 2 * pad
    h, w = img.shape[:2]
    if ph > h or pw > w:
        raise ConfigError(f"a {letter_px}-px legend {text!r} does not fit a {w}×{h} image")
    y, x = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    panel = np.empty((ph, pw, 3), np.uint8)
    panel[:] = _PANELS[int(rng.integers(len(_PANELS)))]
    cv2.putText(panel, text, (pad, pad + th), _FONT, scale, (25, 25, 25), thick, cv2.LINE_AA)
    light = float(np.clip(img[y:y + ph, x:x + pw].mean() * 2.0, 0.7, 1.0))
    out = img.copy()
    out[y:y + ph, x:x + pw] = panel.astype(np.float32) / 255.0 * light
    return out, (y, x, ph, pw)


def read_legend(img8: np.ndarray, box: tuple[int, int, int, int]) -> str:
    """OCR of the panel: the box upscaled 3×, Otsu-binarised, framed in white, one text line."""
    y, x, h, w = box
    grey = cv2.cvtColor(img8[y:y + h, x:x + w], cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]
    binary = cv2.copyMakeBorder(binary, 30, 30, 30, 30, cv2.BORDER_CONSTANT, value=255)
    config = "--psm 7 -c tessedit_char_whitelist=" + _CHARS.replace(" ", "\\ ")
    return " ".join(_tesseract().image_to_string(binary, config=config).split())


def char_accuracy(read: str, truth: str) -> float:
    """1 − Levenshtein(read, truth)/len(truth), floored at 0."""
    prev = list(range(len(truth) + 1))
    for i, a in enumerate(read, 1):
        cur = [i]
        for j, b in enumerate(truth, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return max(0.0, 1.0 - prev[-1] / len(truth))


def run_signs(req: EvalRequest, letter_px: tuple[int, ...] = LETTER_PX,
              progress: Callable[[str], None] | None = None) -> dict:
    """One sign per photo and letter size; every method reads the same panels. Only the request's
    models, backend, photos, corruption and crop (default 384 px) matter; baselines do not run."""
    _tesseract()
    methods = model_restorers(req)
    files = select_photos(req)
    reads: dict[str, list[tuple[float, bool]]] = {CLEAN_ROW: [], INPUT_ROW: []} | {m: [] for m in methods}
    samples = []
    for i, path in enumerate(files):
        base = centre_crop(read_rgb(path), req.crop or CROP_PX)
        for k, size in enumerate(letter_px):
            rng = np.random.default_rng([req.seed, zlib.crc32(path.stem.encode()), size])
            text = LEGENDS[(i * len(letter_px) + k) % len(LEGENDS)]
            clean, box = paste_legend(base, text, size, rng)
            dirty, _ = corrupt_file_image(clean, path.stem, req.corruption, req.seed, heavy=req.heavy,
                                          frame_px=req.frame_px or None)
            images = {CLEAN_ROW: clean, INPUT_ROW: dirty} | {m: fn(dirty) for m, fn in methods.items()}
            sample = {"file": path.name, "letter_px": size, "legend": text}
            for name, image in images.items():
                got = read_legend(to_uint8(image), box)
                reads[name].append((char_accuracy(got, text), got == text))
                sample[name] = got
            samples.append(sample)
        if progress:
            progress(path.name)
    rows = []
    for name, values in reads.items():
        acc = np.array([a for a, _ in values])
        exact = np.array([e for _, e in values])
        by_size = {str(s): float(acc[k::len(letter_px)].mean()) for k, s in enumerate(letter_px)}
        rows.append({"method": name, "n": len(values), "char_accuracy": float(acc.mean()),
                     "exact": float(exact.mean()), "char_accuracy_by_letter_px": by_size})
    result = {"corruption": req.corruption, "heavy": req.heavy, "seed": req.seed, "split": req.split,
              "n_images": len(files), "letter_px": list(letter_px), "backend": req.backend,
              "rows": rows, "samples": samples}
    result["table"] = format_signs(result)
    return result


def format_signs(result: dict) -> str:
    sizes = result["letter_px"]
    head = (f"Sign legibility under {result['corruption']}{' (heavy)' if result['heavy'] else ''}: "
            f"{result['n_images']} photos × {len(sizes)} letter sizes ({result['split']} split), "
            f"seed {result['seed']}, Tesseract OCR")
    lines = [head, "", "| method | characters read | legends exact | "
             + " | ".join(f"chars @ {s} px" for s in sizes) + " |",
             "|---" * (3 + len(sizes)) + "|"]
    for r in result["rows"]:
        per = " | ".join(f"{100 * r['char_accuracy_by_letter_px'][str(s)]:.1f} %" for s in sizes)
        lines.append(f"| {r['method']} | {100 * r['char_accuracy']:.1f} % | {100 * r['exact']:.1f} % | {per} |")
    return "\n".join(lines)
