"""Training-only corruption-map head: teaches the net's features *where* the corruption is.

Reconstruction alone gives a drop's pixels a weak, indirect signal: the shipped net left 97 % of
the drops' error (docs/model-log.md E8), yet could fit a single batch of drops (E13). Qian et al.
(attentive GAN for raindrop removal, CVPR 2018) supervise an attention map with the drop mask;
here a 1×1 conv on FastNet's 1/4-resolution decoder features predicts the synthetic mask (dirt α,
drop coverage, streak layer) per full-resolution pixel, with binary cross-entropy. The head is
not part of the model: inference, export and the weights file are unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from streamer.errors import ConfigError
from streamer.models.weights import load_weights, save_weights

FILE = "mask_head.safetensors"  # next to a run's last.safetensors, for --resume
LR_SCALE = 10.0  # the head's learning rate over the net's: fine-tunes run at 1e-4, too slow for it


class MaskHead(nn.Module):
    def __init__(self, channels: int, block: int = 4) -> None:
        super().__init__()
        self.block = block
        self.conv = nn.Conv2d(channels, block * block, 1)
        # default (random) weights, so the trunk gets the mask's gradient from the first step: a
        # linear probe on the shipped net's features barely beats a constant (BCE 0.273 vs 0.278),
        # the trunk itself has to learn where the corruption is
        nn.init.constant_(self.conv.bias, -2.0)  # σ(−2) ≈ 0.12: most pixels are clean

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """1/4-resolution features -> mask logits N×1×H×W at full resolution."""
        return F.pixel_shuffle(self.conv(features), self.block)


def attach(model: nn.Module) -> MaskHead:
    """A head for ``model``'s decoder features; only models with ``features()`` (FastNet) have them."""
    if not hasattr(model, "features") or not hasattr(model, "restore"):
        raise ConfigError(f"mask_loss needs a model with features() and restore() (fast); "
                          f"{type(model).__name__} has none")
    return MaskHead(model.dec1[0].out_channels)


def mask_bce(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, mask.clamp(0.0, 1.0))


def save(head: MaskHead, out: Path) -> None:
    save_weights(head, out / FILE)


def load(head: MaskHead, out: Path) -> None:
    if (out / FILE).exists():
        load_weights(head, out / FILE)
