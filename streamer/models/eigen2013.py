"""Eigen, Krishnan & Fergus, "Restoring an image taken through a window covered with dirt or rain",
ICCV 2013: the paper's three-layer convolutional net, exactly.

Equations (paper §3.1), with f = tanh and * a 2-D convolution::

    F1(I') = tanh(W1 * I' + b1)        W1: 512 x 3 x 16 x 16, "valid"
    F2(I') = tanh(W2 * F1 + b2)        W2: 512 x 512 x 1 x 1
    F(I')  = (1/m) · (W3 ⊛ F2) + b3    W3: 512 -> 3, 8 x 8, "full" convolution

``⊛`` is the full (transposed) convolution, so every output pixel gets a prediction from each of
the up-to-8×8 = 64 feature positions that cover it, and ``m`` is that per-pixel overlap count: the
output is the *average* of the overlapping patch predictions. ``m`` is 64 in the interior and
fewer near the border; it is a constant map computed from the shape with a standard op
(a ones-kernel transposed convolution of a ones map), so the net exports to ONNX with dynamic H×W.

Weights: 3·512·16² + 512·512 + 512·3·8² = 753,664 (biases excluded, as the paper counts).

Frame size: the valid 16×16 / full 8×8 pair shrinks the output by 16−8 = 8 px in each dimension,
so the input is reflect-padded by 4 px on each side first and the output has the input's size
for any H, W ≥ 5 (``multiple = 1``). The paper instead trained on 64×64 patches predicting the
central 56×56; the padding only changes the outer 4 px of a frame.

Value range: the paper works on RGB in [0, 1]; so do we: input and output N×3×H×W float in [0, 1].
The net itself is linear at the output (the paper has no output non-linearity); in ``eval()``
mode the result is clipped to [0, 1] (display range), in ``train()`` mode it is not, so the
MSE gradient never vanishes on out-of-range pixels.

Initialisation (``init="paper"``): W ~ N(0, 0.001), biases 0. The paper writes N(0, 0.001)
without saying whether 0.001 is the variance or the standard deviation; we read it as the
**standard deviation** (``std=0.001``). ``init="identity"`` is our warm start for short CPU
training (see ``identity_init``): the same architecture, started as an approximate identity map.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from streamer.models.registry import register

_PAD = 4  # (16 - 8) / 2: reflect padding that makes the output the input's size
_SOURCE = "Eigen, Krishnan, Fergus ICCV 2013 (3-layer conv net, 753,664 weights)"


@register("eigen2013-rain", weights="eigen2013-rain.safetensors", source=_SOURCE,
          corruption="raindrop")
@register("eigen2013-dirt", weights="eigen2013-dirt.safetensors", source=_SOURCE,
          corruption="dirt")
class Eigen2013(nn.Module):
    def __init__(self, hidden: int = 512, init: Literal["paper", "identity"] = "paper") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, hidden, 16)  # valid
        self.conv2 = nn.Conv2d(hidden, hidden, 1)
        self.conv3 = nn.ConvTranspose2d(hidden, 3, 8, bias=False)  # full convolution
        self.conv3_bias = nn.Parameter(torch.zeros(3))  # b3 is added after the 1/m average
        # counts overlaps: not a parameter and not saved (persistent=False), rebuilt from shape
        self.register_buffer("ones8", torch.ones(1, 1, 8, 8), persistent=False)
        if init == "identity":
            identity_init(self)
        else:
            paper_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h_in, w_in = x.shape[-2:]
        if h_in <= 2 * _PAD or w_in <= 2 * _PAD:  # a sliver (a thumbnail's edge): edge-extend it
            grown = self.forward(F.pad(x, (0, max(0, 2 * _PAD + 1 - w_in), 0, max(0, 2 * _PAD + 1 - h_in)),
                                       mode="replicate"))
            return grown[..., :h_in, :w_in]
        xp = F.pad(x, (_PAD, _PAD, _PAD, _PAD), mode="reflect")
        h = torch.tanh(self.conv1(xp))
        h = torch.tanh(self.conv2(h))
        overlap = F.conv_transpose2d(torch.ones_like(h[:, :1]), self.ones8)  # m, N×1×H×W
        out = self.conv3(h) / overlap + self.conv3_bias.view(1, 3, 1, 1)
        if not self.training:
            out = torch.clamp(out, 0.0, 1.0)
        return out


def paper_init(net: Eigen2013, std: float = 0.001) -> None:
    """The paper's start: every weight N(0, std=0.001), biases zero."""
    for w in (net.conv1.weight, net.conv2.weight, net.conv3.weight):
        nn.init.normal_(w, 0.0, std)
    for b in (net.conv1.bias, net.conv2.bias, net.conv3_bias):
        nn.init.zeros_(b)


@torch.no_grad()
def identity_init(net: Eigen2013, scale: float = 0.25, std: float = 0.001) -> None:
    """Start as (almost) the identity so minutes of CPU training begin at 'no harm done'.

    Hidden unit (c, k) for colour c and output offset k = (ky, kx) in 8×8 copies the input pixel
    at window position k + 4 (a delta in W1, pre-centred by −0.5 so tanh stays near-linear),
    W2 passes it through, and W3 puts it back at offset k. Each output pixel then averages 64
    copies of itself: F ≈ I' (within ~1% at 0 and 1 from the two tanh). Needs 3·64 = 192 of the
    512 hidden units; the other units, and W2, keep the paper's N(0, 0.001).
    """
    paper_init(net, std)
    hidden = net.conv1.out_channels
    # two tanh in a row compress by g at |x − 0.5| = 0.25 (mid-range); W3 undoes that and s
    g = torch.tanh(torch.tanh(torch.tensor(0.25 * scale))).item() / (0.25 * scale)
    units = min(hidden, 3 * 64)
    net.conv1.weight[:units] = 0.0  # the copy units carry no noise: it would be amplified 1/s
    net.conv3.weight[:units] = 0.0
    for unit in range(units):
        c, k = divmod(unit, 64)
        ky, kx = divmod(k, 8)
        net.conv1.weight[unit, c, ky + _PAD, kx + _PAD] += scale
        net.conv1.bias[unit] = -0.5 * scale
        net.conv2.weight[unit, unit, 0, 0] += 1.0
        net.conv3.weight[unit, c, ky, kx] += 1.0 / (scale * g)
    net.conv3_bias.fill_(0.5)
