"""Can a small net *find* raindrops (or dirt)? Detection probe behind docs/model-log.md E15 (and E28).

Session 6 showed that with the true drop mask plain inpainting gains +6…7 dB, yet FastNet's
features do not locate drops. This trains detectors from scratch on the same batches (drop
patches only, BCE on the synthetic drop mask) and scores each on the validation crops that
``streamer eval --corruption raindrop`` uses: BCE against a constant, correlation with the mask,
and the gain of OpenCV inpainting *with the predicted mask* — what detection would buy.

  quarter  FastNet's trunk (1/4, 1/8, 1/16) + a 1×1 head at 1/4 resolution
  half     the same trunk fed by a 1/2-resolution branch, mask predicted at 1/2 resolution
  slim     the half-width ``DropFinder`` of ``fast-drops`` (16/24/32, no context), from scratch
  probe    the shipped ``fast``'s frozen features + a 1×1 head: what the restorer already knows

``--kind dirt`` asks the same of the dirt's α map (the mask ``streamer.synth`` returns for dirt).

    python scripts/drop_detect_probe.py --steps 3000 --out runs/detect
    python scripts/drop_detect_probe.py --kind dirt --models slim,probe --out runs/detect_dirt
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamer.evaluate.metrics import psnr_db
from streamer.evaluate.runner import EvalRequest, centre_crop, select_photos
from streamer.models import get_spec
from streamer.models.fast import DropFinder, FastNet
from streamer.models.weights import load_weights
from streamer.synth.pairs import corrupt_file_image, to_uint8
from streamer.train.data import PatchMix, PatchStream, list_images, read_rgb, split
from streamer.train.mask_head import MaskHead


def _lrelu(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2 if stride == 1 else 0),
                         nn.LeakyReLU(0.1, inplace=True))


class Quarter(nn.Module):
    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = (round(c * width) for c in (32, 48, 64))
        self.net, self.head = FastNet(c1, c2, c3), MaskHead(c1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net.features(x)[1])


class Half(nn.Module):
    """1/2-resolution branch (2.4 kFLOP/px): into the trunk's stem, and beside it at the head."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.net = FastNet()
        self.branch = nn.Sequential(_lrelu(12, c), _lrelu(c, c))
        self.into = _lrelu(c, 32, k=2, stride=2)  # 1/2 -> 1/4, added to the stem output
        self.up = _lrelu(32, c, k=1)
        self.head = nn.Conv2d(c, 4, 1)
        nn.init.constant_(self.head.bias, -2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        h = self.branch(F.pixel_unshuffle(x, 2))
        xs = F.conv2d(x, n.s2d, stride=4)
        e1 = n.enc1(n.stem(xs) + self.into(h))
        e2 = n.enc2(n.down2(e1))
        m = n.mid(n.down3(e2))
        d1 = n.dec1(n.up2(n.dec2(n.up3(m) + e2)) + e1)
        u = F.interpolate(self.up(d1), scale_factor=2.0, mode="nearest")
        return F.pixel_shuffle(self.head(F.leaky_relu(u + h, 0.1)), 2)


class Slim(nn.Module):
    """``fast-drops``' finder alone, on the frame's 4×4 space-to-depth blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.finder = DropFinder()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.finder(F.pixel_unshuffle(x, 4)), 4)


class Probe(nn.Module):
    """A linear probe: only the head trains; the shipped restorer's trunk stays frozen."""

    def __init__(self) -> None:
        super().__init__()
        spec = get_spec("fast")
        self.net = load_weights(spec.build(), spec.weights_path).requires_grad_(False)
        self.head = MaskHead(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            d1 = self.net.features(x)[1]
        return self.head(d1)


MODELS = {"quarter": Quarter, "half": Half, "slim": Slim, "probe": Probe}


def val_crops(clean_dir: Path, crop: int = 256) -> dict[str, list[tuple[np.ndarray, ...]]]:
    """(dirty, clean, mask) per validation photo for every corruption and for clean input."""
    out: dict[str, list[tuple[np.ndarray, ...]]] = {}
    for path in select_photos(EvalRequest(clean=clean_dir, corruption="dirt")):
        clean = centre_crop(read_rgb(path), crop)
        out.setdefault("clean", []).append((clean, clean, np.zeros(clean.shape[:2] + (1,), np.float32)))
        for kind in ("raindrop", "dirt", "streaks"):
            dirty, mask = corrupt_file_image(clean, path.stem, kind, 0)
            out.setdefault(kind, []).append((dirty, clean, mask))
    return out


@torch.no_grad()
def score(model: nn.Module, val: list) -> dict[str, float]:
    model.eval()
    bce, const, corr, gain, hit, false = [], [], [], [], [], []
    for dirty, clean, mask3 in val:
        mask = mask3[..., 0]
        logit = model(torch.from_numpy(dirty.transpose(2, 0, 1))[None])[0, 0]
        m = torch.from_numpy(mask).clamp(0.0, 1.0)
        bce.append(F.binary_cross_entropy_with_logits(logit, m).item())
        p0 = m.mean().clamp(1e-4, 1 - 1e-4)
        const.append(F.binary_cross_entropy(p0.expand_as(m), m).item())
        p = torch.sigmoid(logit).numpy()
        corr.append(float(np.corrcoef(p.ravel(), mask.ravel())[0, 1]))
        hole = cv2.dilate((p > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8))
        d8, ref = to_uint8(dirty), to_uint8(clean)
        filled = cv2.inpaint(d8, hole, 5, cv2.INPAINT_NS)
        gain.append(psnr_db(filled, ref) - psnr_db(d8, ref))
        drop = mask > 0.3
        hit.append(float((p[drop] > 0.5).mean()) if drop.any() else np.nan)
        false.append(float((p[mask < 0.03] > 0.5).mean()))
    model.train()
    return {"bce": float(np.mean(bce)), "bce_const": float(np.mean(const)), "corr": float(np.mean(corr)),
            "inpaint_gain_db": float(np.mean(gain)), "recall": float(np.nanmean(hit)),
            "false_pos": float(np.mean(false))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clean", default="../shared/data/images")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/detect"))
    ap.add_argument("--kind", choices=("raindrop", "dirt"), default="raindrop")
    ap.add_argument("--models", default="quarter,half", help=f"comma-separated: {', '.join(MODELS)}")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, _ = split(list_images(args.clean))
    mix = PatchMix(1.0, 0.0, 0.0) if args.kind == "dirt" else PatchMix(0.0, 1.0, 0.0)  # that kind only
    stream = PatchStream([read_rgb(p) for p in train], 128, args.seed, mix, frame_px=(640, 1920), with_mask=True)
    batches = iter(torch.utils.data.DataLoader(stream, batch_size=args.batch, num_workers=1))
    val = val_crops(Path(args.clean))[args.kind]
    models = {k: MODELS[k]() for k in args.models.split(",")}
    opts = {k: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=args.lr)
            for k, m in models.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    log = []
    t0 = time.monotonic()
    for step in range(1, args.steps + 1):
        dirty, _, mask = next(batches)
        for k, m in models.items():
            loss = F.binary_cross_entropy_with_logits(m(dirty), mask.clamp(0.0, 1.0))
            opts[k].zero_grad()
            loss.backward()
            opts[k].step()
        if step % args.every == 0 or step == args.steps:
            for k, m in models.items():
                row = {"step": step, "model": k, "wall_s": round(time.monotonic() - t0), **score(m, val)}
                log.append(row)
                print(json.dumps(row), flush=True)
                torch.save(m.state_dict(), args.out / f"{k}.pt")
            (args.out / "log.json").write_text(json.dumps(log, indent=1))


if __name__ == "__main__":
    main()
