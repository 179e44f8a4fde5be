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
* Standard ops only (Conv, LeakyReLU, PixelShuffle, Add, Mul, Clip): exports to ONNX opset 17 and
  quantizes to INT8 (per-channel weights, ReLU-like activations).

Value range: input and output N×3×H×W float in [0, 1]; H and W multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

from streamer.models.registry import register


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
        nn.LeakyReLU(0.1, inplace=True),
    )


@register(
    "fast",
    weights="fast.safetensors",
    source="streamer design: gain/offset U-Net over PixelUnshuffle (docs/model-log.md)",
    multiple=8,
)
class FastNet(nn.Module):
    def __init__(self, c1: int = 16, c2: int = 32, c3: int = 48) -> None:
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(2)  # 3 @ 1 -> 12 @ 1/2
        self.enc1 = _conv(12, c1)  # 1/2
        self.down2 = _conv(c1, c2, stride=2)  # 1/4
        self.enc2 = _conv(c2, c2)
        self.down3 = _conv(c2, c3, stride=2)  # 1/8
        self.mid = nn.Sequential(_conv(c3, c3, dilation=2), _conv(c3, c3))
        self.up3 = nn.Sequential(nn.ConvTranspose2d(c3, c2, 2, stride=2), nn.LeakyReLU(0.1, True))
        self.dec2 = _conv(c2, c2)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c2, c1, 2, stride=2), nn.LeakyReLU(0.1, True))
        self.dec1 = _conv(c1, c1)
        self.head = nn.Conv2d(c1, 6 * 4, 3, padding=1)  # (g-1, b) x 3 colours x 2x2 sub-pixels
        self.shuffle = nn.PixelShuffle(2)
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(self.unshuffle(x))
        e2 = self.enc2(self.down2(e1))
        m = self.mid(self.down3(e2))
        d2 = self.dec2(self.up3(m) + e2)
        d1 = self.dec1(self.up2(d2) + e1)
        gb = self.shuffle(self.head(d1))  # N x 6 x H x W
        gain = gb[:, 0:3] + 1.0
        offset = gb[:, 3:6]
        return torch.clamp(gain * x + offset, 0.0, 1.0)
