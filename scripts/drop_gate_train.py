"""Teach drop detection for the gate (docs/model-log.md E15): joint or as a separate detector.

``--mode joint``: the shipped FastNet plus a 1×1 drop head on its 1/4-resolution features
(64 FLOP/px); output = gate(restored, drop mask), trained on log-MSE of that output plus BCE of
the drop mask (drop patches: the synthetic mask; dirt, streak, clean, sign patches: zero).
``--mode detector``: FastNet frozen; a separate detector (``drop_detect_probe.Quarter``) learns
the mask alone, now with those negatives. Validation: ``drop_gate_probe.gate_scores``.

    PYTHONPATH=scripts python scripts/drop_gate_train.py --mode joint --out runs/gate_joint
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from drop_detect_probe import Quarter, val_crops
from drop_gate_probe import gate_scores, print_scores
from streamer.evaluate.restore import load_model
from streamer.models.fill import Fill
from streamer.train.data import PatchMix, PatchStream, list_images, read_rgb, split


class GatedFast(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.drop = nn.Conv2d(net.dec1[0].out_channels, 16, 1)  # one logit per pixel of a 4×4 block
        nn.init.constant_(self.drop.bias, -4.0)
        self.fill = Fill()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xs, d1 = self.net.features(x)
        logits = F.pixel_shuffle(self.drop(d1), 4)
        return self.fill.gate(self.net.restore(x, xs, d1), torch.sigmoid(logits)), logits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("joint", "detector"), required=True)
    ap.add_argument("--clean", default="../shared/data/images")
    ap.add_argument("--init", type=Path, help="detector mode: start from this detector state dict")
    ap.add_argument("--width", type=float, default=1.0, help="detector mode: trunk width")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--drops", type=int, default=4, help="drop patches per batch")
    ap.add_argument("--others", type=int, default=12, help="dirt/streak/clean patches per batch")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--mask-weight", type=float, default=1.0)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    train, _ = split(list_images(args.clean))
    imgs = [read_rgb(p) for p in train]
    loader = lambda stream, n: iter(torch.utils.data.DataLoader(stream, batch_size=n, num_workers=1))  # noqa: E731
    drops = loader(PatchStream(imgs, 128, args.seed, PatchMix(0.0, 1.0, 0.0), frame_px=(640, 1920),
                               with_mask=True), args.drops)
    others = loader(PatchStream(imgs, 128, args.seed + 1, PatchMix(0.5, 0.0, 0.2), frame_px=(640, 1920),
                                clean_hard=0.1, signs=0.2), args.others)
    crops = val_crops(Path(args.clean))
    net, _ = load_model("fast")
    if args.mode == "joint":
        model = GatedFast(net)
        groups = [{"params": list(net.parameters()), "lr": args.lr},
                  {"params": list(model.drop.parameters()), "lr": args.head_lr}]
        restore = lambda x: model.net(x)  # noqa: E731
        find = lambda x: torch.sigmoid(model(x)[1])  # noqa: E731
    else:
        net.requires_grad_(False)
        model = Quarter(args.width)
        if args.init:
            model.load_state_dict(torch.load(args.init, weights_only=True))
        groups = [{"params": list(model.parameters()), "lr": args.head_lr}]
        restore, find = net, lambda x: torch.sigmoid(model(x))  # noqa: E731
    for g in groups:
        g["base_lr"] = g["lr"]
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    args.out.mkdir(parents=True, exist_ok=True)
    log, t0 = [], time.monotonic()
    for step in range(1, args.steps + 1):
        (xd, cd, md), (xo, co) = next(drops), next(others)
        x, clean = torch.cat([xd, xo]), torch.cat([cd, co])
        target = torch.cat([md, torch.zeros_like(xo[:, :1])]).clamp(0.0, 1.0)
        for g in opt.param_groups:  # cosine to 2 % over the run, 100 warm-up steps
            g["lr"] = g["base_lr"] * min(1.0, step / 100) * (0.02 + 0.49 * (1 + math.cos(math.pi * step / args.steps)))
        if args.mode == "joint":
            out, logits = model(x)
            mse = ((out - clean) ** 2).mean(dim=(1, 2, 3))
            loss = torch.log10(mse + 1e-4).mean() + args.mask_weight * F.binary_cross_entropy_with_logits(logits, target)
        else:
            loss = F.binary_cross_entropy_with_logits(model(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % args.every == 0 or step == args.steps:
            model.eval()
            row = {"step": step, "wall_s": round(time.monotonic() - t0), "loss": float(loss),
                   **gate_scores(restore, find, crops)}
            model.train()
            log.append(row)
            print(f"step {step} ({row['wall_s']} s) loss {float(loss):.4f}", flush=True)
            print_scores({k: v for k, v in row.items() if isinstance(v, dict)})
            torch.save(model.state_dict(), args.out / "model.pt")
            (args.out / "log.json").write_text(json.dumps(log, indent=1))


if __name__ == "__main__":
    main()
