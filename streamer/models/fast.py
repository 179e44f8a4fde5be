"""FastNet: the product's default restorer, built for real time on CPU and Jetson.

Why this shape
--------------
* All features live at 1/2, 1/4 and 1/8 resolution (PixelUnshuffle keeps every input pixel, so
  nothing is lost), which keeps the cost under 10 kFLOP per output pixel.
* The head does not paint pixels. It predicts, per output pixel and channel, a gain ``g`` and an
  offset ``b`` and returns ``clean = g * x + b`` with the full-resolution input ``x``. The paper's
  dirt model I' = p·α⊙D + (1−α)⊙I inverts exactly to such an affine map
  (g = 1/(1−α), b = −p·α·D/(1−α)); screen-blended rain streaks do too
  (I = 1 − (1−I')/(1−S)). Opaque flecks and refracting drops need inpainting: g → 0 and ``b``
  carries the content. Fine texture of the scene passes through ``x`` untouched, so the
  low-resolution trunk only has to find *where* the glass is dirty.
* Identity at start-up (head near zero): clean frames are left alone from the first step.
* Standard ops only (Conv, ConvTranspose, LeakyReLU, Add, Mul, Clip): exports to ONNX opset 17
  and quantizes to INT8 (per-channel weights, ReLU-like activations).

Value range: input and output N×3×H×W float in [0, 1]; H and W multiples of 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from streamer.models.registry import register


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
        nn.LeakyReLU(0.1, inplace=True),
    )


def _space_to_depth_weight() -> torch.Tensor:
    """One-hot 2×2/stride-2 kernel: conv with it == PixelUnshuffle(2) (channel c·4 + dy·2 + dx)."""
    w = torch.zeros(12, 3, 2, 2)
    for c in range(3):
        for dy in range(2):
            for dx in range(2):
                w[c * 4 + dy * 2 + dx, c, dy, dx] = 1.0
    return w


@register(
    "fast",
    weights="fast.safetensors",
    source="streamer design: gain/offset U-Net at 1/2-1/8 resolution (docs/model-log.md)",
    multiple=8,
)
class FastNet(nn.Module):
    """Parameters are those of PixelUnshuffle(2) → enc1 (3×3 over 12 channels) → … → head (24
    channels = (g−1, b) × 3 colours × 2×2 sub-pixels) → PixelShuffle(2). ``forward`` computes
    exactly that, arranged for fast runtimes (ONNX Runtime spends more time in 6-D transposes
    than in convolutions otherwise):

    * PixelUnshuffle + enc1's 3×3 conv = one 6×6/stride-2 conv on the input, whose kernel is a
      reshuffle of enc1's weights (constant-folded at export);
    * the blend g·x + b is done at half resolution on the space-to-depth input, so only the 12
      output channels are shuffled back (a one-hot 2×2/stride-2 transposed conv), not 24.
    """

    def __init__(self, c1: int = 16, c2: int = 32, c3: int = 48) -> None:
        super().__init__()
        self.enc1 = _conv(12, c1)  # weights over PixelUnshuffle(2) channels; see forward
        self.down2 = _conv(c1, c2, stride=2)  # 1/4
        self.enc2 = _conv(c2, c2)
        self.down3 = _conv(c2, c3, stride=2)  # 1/8
        self.mid = nn.Sequential(_conv(c3, c3, dilation=2), _conv(c3, c3))
        self.up3 = nn.Sequential(nn.ConvTranspose2d(c3, c2, 2, stride=2), nn.LeakyReLU(0.1, True))
        self.dec2 = _conv(c2, c2)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c2, c1, 2, stride=2), nn.LeakyReLU(0.1, True))
        self.dec1 = _conv(c1, c1)
        self.head = nn.Conv2d(c1, 6 * 4, 3, padding=1)  # (g-1, b) x 3 colours x 2x2 sub-pixels
        self.register_buffer("s2d", _space_to_depth_weight(), persistent=False)
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.enc1[0]
        c1 = stem.weight.shape[0]
        # W6[o, c, 2ky+dy, 2kx+dx] = W3[o, 4c + 2dy + dx, ky, kx]; pad 1 at 1/2 res = pad 2 here
        w6 = stem.weight.reshape(c1, 3, 2, 2, 3, 3).permute(0, 1, 4, 2, 5, 3).reshape(c1, 3, 6, 6)
        e1 = F.leaky_relu(F.conv2d(x, w6, stem.bias, stride=2, padding=2), 0.1)
        e2 = self.enc2(self.down2(e1))
        m = self.mid(self.down3(e2))
        d2 = self.dec2(self.up3(m) + e2)
        d1 = self.dec1(self.up2(d2) + e1)
        gb = self.head(d1)  # channels 0..11: g-1, 12..23: b, each ordered 4c + 2dy + dx
        x_s2d = F.conv2d(x, self.s2d, stride=2)
        clean_s2d = torch.clamp((gb[:, 0:12] + 1.0) * x_s2d + gb[:, 12:24], 0.0, 1.0)
        return F.conv_transpose2d(clean_s2d, self.s2d, stride=2)
