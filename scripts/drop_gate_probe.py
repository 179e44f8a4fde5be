"""What would a drop detector buy the shipped net? Composition probe behind docs/model-log.md E15.

The restored frame is gated by a drop mask and the holes filled by normalized convolution
(``streamer.models.fill``): out = (1 − m)·restored + m·fill. Scored like ``streamer eval`` (the
validation crops, seed 0) on every corruption and on clean crops, with the mask predicted by a
detector from ``scripts/drop_detect_probe.py`` and, for drops, with the true mask (the ceiling).

    python scripts/drop_gate_probe.py runs/detect/quarter.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from streamer.evaluate.metrics import psnr_db
from streamer.evaluate.restore import load_model
from streamer.models.fill import Fill
from streamer.synth.pairs import to_uint8

from drop_detect_probe import Half, Quarter, val_crops  # noqa: E402  (a sibling script)

GATE = Fill()


def _psnr(img: np.ndarray | torch.Tensor, ref: np.ndarray) -> float:
    if isinstance(img, torch.Tensor):
        img = img[0].numpy().transpose(1, 2, 0)
    return psnr_db(to_uint8(img), to_uint8(ref))


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


@torch.no_grad()
def gate_scores(restore, find_drops, crops: dict) -> dict[str, dict[str, float]]:
    """Mean PSNR per corruption: input, restored, restored + gate, (drops) true-mask gate.

    ``restore``: N×3×H×W -> same; ``find_drops``: N×3×H×W -> N×1×H×W drop probability."""
    result = {}
    for kind, items in crops.items():
        rows: dict[str, list[float]] = {}
        for dirty, clean, mask in items:
            x = _t(dirty)
            restored, m = restore(x), find_drops(x)
            rows.setdefault("input", []).append(_psnr(dirty, clean))
            rows.setdefault("restored", []).append(_psnr(restored, clean))
            rows.setdefault("gated", []).append(_psnr(GATE.gate(restored, m), clean))
            if kind == "raindrop":
                rows.setdefault("gated (true mask)", []).append(_psnr(GATE.gate(restored, _t(mask)), clean))
            rows.setdefault("worst gated", []).append(rows["gated"][-1])
            rows.setdefault("mask mean", []).append(float(m.mean()))
        result[kind] = {k: float(np.min(v) if k.startswith("worst") else np.mean(v)) for k, v in rows.items()}
    return result


def print_scores(result: dict[str, dict[str, float]]) -> None:
    for kind, rows in result.items():
        base = rows["input"]
        print(f"{kind}: " + "  ".join(f"{k} {v:.4f}" if k == "mask mean" else
                                     f"{k} {v:.2f}" + ("" if kind == "clean" or k.startswith("worst") else f" ({v - base:+.2f})")
                                     for k, v in rows.items()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("detector", type=Path)
    ap.add_argument("--kind", default="quarter", choices=("quarter", "half"))
    ap.add_argument("--clean", default="../shared/data/images")
    ap.add_argument("--weights", help="fast weights (default: shipped)")
    ap.add_argument("--crop", type=int, default=256)
    args = ap.parse_args()
    det = Quarter() if args.kind == "quarter" else Half()
    det.load_state_dict(torch.load(args.detector, weights_only=True))
    det.eval()
    net, _ = load_model("fast", args.weights)
    print_scores(gate_scores(net, lambda x: torch.sigmoid(det(x)), val_crops(Path(args.clean), args.crop)))


if __name__ == "__main__":
    main()
