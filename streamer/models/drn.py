"""DRN: the de-raining network of the Toyota Connected case study, sized to train on a CPU.

A dense-block encoder–decoder in the SegNet manner: the encoder max-pools and remembers *where*
each maximum was (pooling indices); the decoder max-unpools its features back to exactly those
positions, so thin structures (rain streaks, drop rims) keep their place at full resolution.
Skip connections concatenate encoder features into the decoder. The net predicts the rain layer
R and returns ``clean = input − R`` (residual: the scene itself never has to be re-synthesised).
Trained with an L1 loss ``|clean − target|`` (configs/train_drn.yaml).

Pooling indices, exportable: torch's ``MaxUnpool2d`` does not export to ONNX with the TorchScript
exporter (torch 2.13: ``TypeError: cond must be a bool`` inside the symbolic), and TensorRT has
no MaxUnpool layer. ``IndexPool``/``unpool`` below keep the exact semantics of
``MaxPool2d(2, 2, return_indices=True)`` + ``MaxUnpool2d(2, 2)`` with standard ops: the indices
are carried as a one-hot map of the *first* maximum of each 2×2 window (scan order, as torch
picks it), built with SpaceToDepth, ReduceMax, Equal and CumSum; unpooling multiplies by that
map and DepthToSpace puts each value back. tests/test_models.py checks equality with torch's ops.

Value range: input and output N×3×H×W float in [0, 1]; H and W multiples of 4 (two poolings).
In ``eval()`` the output is clipped to [0, 1]; in ``train()`` it is not (L1 keeps its gradient).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from streamer.models.registry import register


def _act() -> nn.Module:
    """LeakyReLU, not ReLU: with plain ReLU the first CPU run (700 steps, L1) drove every unit of
    the last block to zero (dead ReLUs), after which R ≡ 0 and the net could only copy its input."""
    return nn.LeakyReLU(0.1, inplace=True)


class DenseBlock(nn.Module):
    """Each 3×3 conv sees the concatenation of the block input and all earlier outputs."""

    def __init__(self, cin: int, growth: int, layers: int, cout: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin + i * growth, growth, 3, padding=1), _act())
            for i in range(layers)
        )
        self.transition = nn.Sequential(nn.Conv2d(cin + layers * growth, cout, 1), _act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, dim=1)))
        return self.transition(torch.cat(feats, dim=1))


class IndexPool(nn.Module):
    """2×2/2 max pooling that also returns its indices as a first-maximum one-hot map."""

    def __init__(self) -> None:
        super().__init__()
        self.space_to_depth = nn.PixelUnshuffle(2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        win = self.space_to_depth(x).reshape(n, c, 4, h // 2, w // 2)  # window order dy*2+dx
        pooled = win.amax(dim=2, keepdim=True)
        hit = (win == pooled).to(x.dtype)
        first = hit * (torch.cumsum(hit, dim=2) == 1).to(x.dtype)  # ties: the first, like torch
        return pooled.squeeze(2), first


def unpool(x: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """MaxUnpool2d(2, 2): put each value at its window's remembered position, zeros elsewhere."""
    n, c, h, w = x.shape
    spread = (x.unsqueeze(2) * where).reshape(n, c * 4, h, w)
    return nn.functional.pixel_shuffle(spread, 2)


@register(
    "drn",
    weights="drn.safetensors",
    source="DRN de-raining net (Toyota Connected case study): dense encoder-decoder, "
           "pooling indices, predicts rain layer R",
    corruption="streaks+raindrop",
    multiple=4,
)
class DRN(nn.Module):
    def __init__(self, c1: int = 32, c2: int = 48, growth: int = 12,
                 init: Literal["identity", "default"] = "identity") -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c1, 3, padding=1), _act())
        self.enc1 = DenseBlock(c1, growth, 3, c1)  # full resolution
        self.pool = IndexPool()
        self.enc2 = DenseBlock(c1, growth, 3, c2)  # 1/2
        self.mid = DenseBlock(c2, growth, 3, c2)  # 1/4
        self.fuse2 = DenseBlock(2 * c2, growth, 2, c1)  # 1/2: unpooled mid ++ skip enc2
        self.fuse1 = DenseBlock(2 * c1, growth, 2, c1)  # 1: unpooled ++ skip enc1
        self.head = nn.Conv2d(c1, 3, 3, padding=1)  # R, the rain layer
        if init == "identity":  # start near R = 0: clean frames untouched from step 0
            nn.init.normal_(self.head.weight, std=1e-3)
            nn.init.zeros_(self.head.bias)
        # "default" (torch's init; the case study names none): with L1, a near-zero head is a
        # stable fixed point — L1 wants the conditional *median* of R, which is 0 wherever the
        # net is not yet >50 % sure of rain, and a tiny head passes the trunk no gradient

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(self.stem(x))
        p1, where1 = self.pool(e1)
        e2 = self.enc2(p1)
        p2, where2 = self.pool(e2)
        m = self.mid(p2)
        d2 = self.fuse2(torch.cat([unpool(m, where2), e2], dim=1))
        d1 = self.fuse1(torch.cat([unpool(d2, where1), e1], dim=1))
        clean = x - self.head(d1)
        if not self.training:
            clean = torch.clamp(clean, 0.0, 1.0)
        return clean
