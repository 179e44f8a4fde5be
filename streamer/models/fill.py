"""Hole filling by normalized convolution (Knutsson & Westin 1993), push-pull over two scales.

A drop on the glass hides the scene: no gain/offset of its pixels brings it back, it has to be
filled from around. With the true drop mask, OpenCV inpainting alone gains +6…7 dB on our
synthetic drops (docs/model-log.md E13). This is a network-friendly fill of the same kind:
blurred valid pixels divided by blurred validity at 1/4 resolution, falling back to 1/16 where a
hole is too big to see across. ``Fill.gate`` works on full-resolution images (the probes in
scripts/); ``Fill.forward`` is the same computation on FastNet's space-to-depth blocks, where the
whole fill runs at 1/4 resolution. Standard ops only (AveragePool, depthwise Conv, Div, Resize);
the kernels are fixed buffers, so they fold into constants at export.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

EPS = 0.05  # how much the coarse fill counts where the fine one has support
SIGMA = 1.5  # smoothing at each scale, in pixels of that scale (1/4: 6 px of the frame)


def gauss_weight(sigma: float, channels: int) -> torch.Tensor:
    r = math.ceil(2.5 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (torch.outer(k, k) / k.sum() ** 2).expand(channels, 1, -1, -1).contiguous()


def bilinear_up_weight(block: int = 4, channels: int = 3) -> torch.Tensor:
    """3×3 depthwise-to-blocks kernel: conv (edge-padded) == bilinear ×block resize, then
    space-to-depth (output channel c·block² + dy·block + dx)."""
    taps = []
    for d in range(block):
        o = (d + 0.5) / block - 0.5  # source offset from the block centre, in blocks
        t = torch.zeros(3)
        t[0 if o < 0 else 2], t[1] = abs(o), 1.0 - abs(o)
        taps.append(t)
    w = torch.zeros(channels * block * block, 1, 3, 3)
    for c in range(channels):
        for dy in range(block):
            for dx in range(block):
                w[c * block * block + dy * block + dx, 0] = torch.outer(taps[dy], taps[dx])
    return w


class Fill(nn.Module):
    """No parameters; fixed kernels as non-persistent buffers (not in any weight file)."""

    def __init__(self, block: int = 4) -> None:
        super().__init__()
        self.block = block
        self.register_buffer("g3", gauss_weight(SIGMA, 3), persistent=False)
        self.register_buffer("g1", gauss_weight(SIGMA, 1), persistent=False)
        self.register_buffer("up", bilinear_up_weight(block), persistent=False)

    def _smooth(self, x: torch.Tensor) -> torch.Tensor:
        k = self.g3 if x.shape[1] == 3 else self.g1
        return F.conv2d(x, k, padding=k.shape[-1] // 2, groups=x.shape[1])

    def quarter(self, num4: torch.Tensor, den4: torch.Tensor) -> torch.Tensor:
        """Block means of valid·image (N×3×h×w) and of validity (N×1×h×w) -> the fill at 1/4."""
        coarse = self._smooth(F.avg_pool2d(num4, 4)) / (self._smooth(F.avg_pool2d(den4, 4)) + 1e-6)
        coarse = F.interpolate(coarse, scale_factor=4.0, mode="bilinear", align_corners=False)
        return (self._smooth(num4) + EPS * coarse) / (self._smooth(den4) + EPS)

    def gate(self, x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Full resolution: masked pixels (``hole`` N×1×H×W in [0,1]) replaced by the fill from
        the rest. H and W multiples of 16."""
        b, valid = self.block, 1.0 - hole
        fill4 = self.quarter(F.avg_pool2d(x * valid, b), F.avg_pool2d(valid, b))
        return valid * x + hole * F.interpolate(fill4, scale_factor=float(b), mode="bilinear", align_corners=False)

    def forward(self, clean: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """``gate`` on space-to-depth tensors: ``clean`` N×(3·b²)×h×w, ``hole`` N×b²×h×w."""
        n, _, h, w = clean.shape
        valid = 1.0 - hole
        valid3 = torch.cat([valid, valid, valid], 1)
        per_colour = (clean * valid3).reshape(n, 3, self.block * self.block, h, w)
        fill4 = self.quarter(per_colour.mean(2), valid.mean(1, keepdim=True))
        up = F.conv2d(F.pad(fill4, (1, 1, 1, 1), mode="replicate"), self.up, groups=3)
        return valid3 * clean + (1.0 - valid3) * up
