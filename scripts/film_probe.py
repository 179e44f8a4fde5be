"""Can one frame tell how strong the dirt's faint film is? (docs/model-log.md, session 20)

`scripts/dirt_components.py` showed `fast` barely touches the film (the dirt's broad haze layer,
peak α ~ U(0, 0.2)) when it comes alone, and lifts an average film whenever spots are present.
If the film's strength were visible in a frame, a net could learn it and the film (a third of
the input's error) would be a lever; if not, hedging at the average is the best a per-frame net
can do. This probe trains a small CNN for one thing only: the film's mean α over a 256-px window
of a 720p frame. Clean windows of the training photos and dirt draws are paired at random every
batch (so it cannot learn pairs by heart), and R² is read on the validation photos under dirt
draws it never saw — with the film alone, under the whole dirt (spots, smudges and flecks on top
show the dirt's colour), and, as a control that the probe can see a film at all, a film 4× as
strong.

    python scripts/film_probe.py [--samples 12] [--draws 1600] [--steps 3000]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from streamer.synth.dirt import DirtParams, dirt_layers
from streamer.synth.pairs import FRAME_PX
from streamer.train.data import list_images, read_rgb, split

OFF = (0.0, 0.0)
CROP, SIDE = 256, 128  # windows cut at 256 px (a 720p camera's scale), seen at 128 (the film is broad)


def _small(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, (SIDE, SIDE), interpolation=cv2.INTER_AREA).reshape(SIDE, SIDE, -1)


def _windows(photos: list[np.ndarray], per_photo: int, rng: np.random.Generator) -> np.ndarray:
    out = []
    for img in photos:
        h, w = img.shape[:2]
        for _ in range(per_photo):
            y0, x0 = int(rng.integers(0, h - CROP + 1)), int(rng.integers(0, w - CROP + 1))
            out.append(_small(img[y0:y0 + CROP, x0:x0 + CROP]))
    return np.stack(out)


def _layers(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` dirt draws for a 256-px window of a 720p frame: the film's α, the other layers' α
    (spots, smudges, flecks; drawn in step with it) and the dirt colour D."""
    film, other, colour = [], [], []
    for _ in range(n):
        seed = int(rng.integers(2**31))
        a_film, d = dirt_layers(np.random.default_rng(seed), (CROP, CROP),
                                replace(DirtParams(), opacity=OFF, spot_opacity=OFF, flecks=OFF), FRAME_PX)
        a_other, _ = dirt_layers(np.random.default_rng(seed), (CROP, CROP), replace(DirtParams(), haze=OFF),
                                 FRAME_PX)
        film.append(_small(a_film))
        other.append(_small(a_other))
        colour.append(_small(d))
    return np.stack(film), np.stack(other), np.stack(colour)


class _Stream:
    """Clean windows × dirt draws × brightness p, paired at random each batch (Eigen's model
    I' = p·α·D + (1−α)·I with α = max(film, other layers)): the probe never sees a pair twice."""

    def __init__(self, windows: np.ndarray, layers, with_other: bool, gain: float = 1.0) -> None:
        self.windows = torch.from_numpy(windows).permute(0, 3, 1, 2)
        film, other, colour = (torch.from_numpy(a).permute(0, 3, 1, 2) for a in layers)
        film = (film * gain).clamp(0, 1)  # gain > 1: the positive control, a film strong enough to see
        self.alpha = torch.maximum(film, other) if with_other else film
        self.colour, self.target = colour, film.mean((1, 2, 3))

    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.randint(len(self.windows), (n,), generator=gen)
        j = torch.randint(len(self.alpha), (n,), generator=gen)
        p = (torch.rand(n, 3, 1, 1, generator=gen) * 0.2 + 0.9) * torch.rand(n, 1, 1, 1, generator=gen)
        a = self.alpha[j]
        x = (p * a * self.colour[j] + (1 - a) * self.windows[i]).clamp(0, 1)
        flip = torch.rand(n, generator=gen) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x), self.target[j]


class _Probe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers, c = [], 3
        for out in (16, 32, 64, 64, 64):
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), nn.LeakyReLU(0.1)]
            c = out
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(2 * c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.trunk(x)
        return self.head(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1)).squeeze(1)


def _r2(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float(1.0 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def probe(train: _Stream, val: _Stream, steps: int, seed: int) -> tuple[float, float]:
    """R² of a CNN trained ``steps`` batches on ``train`` for the film's mean α: on 2,048 fresh
    training pairs, and on 2,048 pairs of validation photos with dirt draws it never saw."""
    torch.manual_seed(seed)
    net = _Probe()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    mean, scale = float(train.target.mean()), float(train.target.std())  # standardised target
    for _ in range(steps):
        x, y = train.batch(32, gen)
        loss = ((net(x) - (y - mean) / scale) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    scores = []
    with torch.no_grad():
        for stream in (train, val):
            x, y = stream.batch(2048, torch.Generator().manual_seed(seed + 1))
            scores.append(_r2(net(x) * scale + mean, y))
    return scores[0], scores[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clean", default="../shared/data/images")
    ap.add_argument("--samples", type=int, default=12, help="windows per photo")
    ap.add_argument("--draws", type=int, default=1600, help="dirt draws for training (a quarter more for validation)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    train_files, val_files = split(list_images(Path(args.clean)))
    big = lambda fs: [im for im in (read_rgb(p) for p in fs) if min(im.shape[:2]) >= CROP]  # noqa: E731
    train_imgs, val_imgs = big(train_files), big(val_files)
    rng = np.random.default_rng(args.seed)
    train_w, val_w = _windows(train_imgs, args.samples, rng), _windows(val_imgs, args.samples, rng)
    train_l, val_l = _layers(args.draws, rng), _layers(args.draws // 4, rng)
    print(f"{len(train_imgs)} training / {len(val_imgs)} validation photos, {args.samples} windows each; "
          f"{args.draws} / {args.draws // 4} dirt draws; {args.steps} steps of 32\n\n"
          "| dirt | R² train | R² validation |\n|---|---|---|")
    for name, other, gain in (("film alone", False, 1.0),
                              ("whole dirt (film under spots, smudges, flecks)", True, 1.0),
                              ("control: film alone, 4× as strong (peak α up to 0.8)", False, 4.0)):
        r2_train, r2_val = probe(_Stream(train_w, train_l, other, gain), _Stream(val_w, val_l, other, gain),
                                 args.steps, args.seed)
        print(f"| {name} | {r2_train:.2f} | {r2_val:.2f} |")
    print(f"\nfilm mean α over the validation draws: {float(val_l[0].mean()):.3f} "
          f"± {float(val_l[0].mean((1, 2, 3)).std()):.3f}")


if __name__ == "__main__":
    main()
