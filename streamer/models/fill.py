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


def gauss_weights(sigma: float, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise Gaussian as a column kernel and a row kernel: two 1-D passes equal the 2-D blur
    (zero padding included) at 2r+1 instead of (2r+1)² taps per pixel."""
    r = math.ceil(2.5 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).expand(channels, 1, -1)
    return k[..., None].contiguous(), k[:, :, None, :].contiguous()


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
    """No parameters; fixed kernels as non-persistent buffers (not in any weight file).

    The fill works on 4-channel tensors, the three colours of valid·image and the validity side
    by side, so each blur and pooling is one op (OpenVINO pads channels to blocks of 16)."""

    def __init__(self, block: int = 4) -> None:
        super().__init__()
        self.block = block
        gv, gh = gauss_weights(SIGMA, 4)
        self.register_buffer("gv", gv, persistent=False)
        self.register_buffer("gh", gh, persistent=False)
        self.register_buffer("up", bilinear_up_weight(block), persistent=False)
        n = block * block  # 1×1 kernels: hole (n) -> hole per colour (3n); 3n -> per-colour mean; n -> mean
        self.register_buffer("spread", torch.eye(n).repeat(3, 1)[:, :, None, None].contiguous(), persistent=False)
        mean = torch.zeros(4, 3 * n + n, 1, 1)  # valid·image (3n) -> colour means; hole (n) -> 1 - mean
        for c in range(3):
            mean[c, c * n:(c + 1) * n] = 1.0 / n
        mean[3, 3 * n:] = -1.0 / n
        self.register_buffer("mean_img", mean[:, :3 * n].contiguous(), persistent=False)
        self.register_buffer("mean_hole", mean[:, 3 * n:].contiguous(), persistent=False)
        self.register_buffer("one", torch.tensor([0.0, 0.0, 0.0, 1.0]), persistent=False)

    def _smooth(self, x: torch.Tensor) -> torch.Tensor:
        r = self.gv.shape[2] // 2
        return F.conv2d(F.conv2d(x, self.gv, padding=(r, 0), groups=4), self.gh, padding=(0, r), groups=4)

    def quarter(self, sums: torch.Tensor) -> torch.Tensor:
        """Block means of valid·image (channels 0-2) and of validity (3), N×4×h×w -> the fill at 1/4."""
        coarse = self._smooth(F.avg_pool2d(sums, 4))
        coarse = F.interpolate(coarse[:, :3] / (coarse[:, 3:] + 1e-6), scale_factor=4.0, mode="bilinear",
                               align_corners=False)
        fine = self._smooth(sums)
        return (fine[:, :3] + EPS * coarse) / (fine[:, 3:] + EPS)

    def gate(self, x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Full resolution: masked pixels (``hole`` N×1×H×W in [0,1]) replaced by the fill from
        the rest. H and W multiples of 16."""
        b, valid = self.block, 1.0 - hole
        fill4 = self.quarter(F.avg_pool2d(torch.cat([x * valid, valid], 1), b))
        return valid * x + hole * F.interpolate(fill4, scale_factor=float(b), mode="bilinear", align_corners=False)

    def forward(self, clean: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """``gate`` on space-to-depth tensors: ``clean`` N×(3·b²)×h×w, ``hole`` N×b²×h×w. 1×1 convs
        with fixed kernels do the channel bookkeeping (a Concat and a 5-D mean cost more)."""
        hole3 = F.conv2d(hole, self.spread)  # each colour's copy of the hole
        sums = F.conv2d(clean - clean * hole3, self.mean_img) + F.conv2d(hole, self.mean_hole, self.one)
        up = F.conv2d(F.pad(self.quarter(sums), (1, 1, 1, 1), mode="replicate"), self.up, groups=3)
        return clean + hole3 * (up - clean)
