"""Report folder: before/after crops and a PSNR-gain bar chart, drawn with OpenCV (no matplotlib).

crops_<stem>.png: one row per image crop: clean | corrupted | each method, labelled.
gain.png: horizontal bars of mean PSNR gain (dB) per method, negative bars in red (not with
--corruption none: only the clean check ran; the crops then show clean | each model's output).
table.md: the table as printed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamer.errors import SinkError

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _write(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise SinkError(f"{path}: cannot write PNG; check the report folder is writable")


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray(tile.copy())
    cv2.rectangle(out, (0, 0), (out.shape[1], 18), (0, 0, 0), -1)
    cv2.putText(out, text[:28], (3, 13), _FONT, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def crop_strip(panels: dict[str, np.ndarray], side: int = 192) -> np.ndarray:
    """Same crop (the most corrupted-looking region is up to the caller) from every panel."""
    first = next(iter(panels.values()))
    h, w = first.shape[:2]
    s = min(side, h, w)
    y, x = (h - s) // 2, (w - s) // 2
    tiles = [_label(p[y:y + s, x:x + s], name) for name, p in panels.items()]
    gap = np.full((s, 4, 3), 255, np.uint8)
    return np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)


def bar_chart(rows: list[dict], title: str, width: int = 720) -> np.ndarray:
    """Mean PSNR gain per method as horizontal bars around a zero line; values in a right column."""
    rows = [r for r in rows if "psnr_gain" in r and r["method"] != "input (corrupted)"]
    bar_h, top, left, right = 26, 40, 190, width - 90
    img = np.full((top + bar_h * max(1, len(rows)) + 20, width, 3), 255, np.uint8)
    cv2.putText(img, title[:80], (8, 24), _FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    neg = max([0.0] + [-r["psnr_gain"] for r in rows])
    pos = max([0.0] + [r["psnr_gain"] for r in rows])
    span = max(neg + pos, 1e-6)
    zero = int(left + (right - left) * neg / span)
    scale = (right - left) / span
    for i, r in enumerate(rows):
        y = top + i * bar_h
        g = r["psnr_gain"]
        x1 = int(round(zero + g * scale))
        color = (60, 120, 200) if g >= 0 else (200, 60, 60)
        cv2.rectangle(img, (min(zero, x1), y + 4), (max(zero, x1), y + bar_h - 4), color, -1)
        cv2.putText(img, r["method"][:24], (6, y + 18), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"{g:+.2f} dB", (right + 10, y + 18), _FONT, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.line(img, (zero, top), (zero, top + bar_h * len(rows)), (0, 0, 0), 1)
    return img


def write_report(out_dir: Path, result: dict, strips: dict[str, np.ndarray], table_md: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, strip in strips.items():
        path = out_dir / f"crops_{stem}.png"
        _write(path, strip)
        written.append(path)
    if result["rows"]:  # none with --corruption none: nothing was corrupted
        chart = out_dir / "gain.png"
        _write(chart, bar_chart(result["rows"], f"PSNR gain over input, {result['corruption']}"))
        written.append(chart)
    (out_dir / "table.md").write_text(table_md + "\n")
    return written + [out_dir / "table.md"]
