"""FastNet's conv-based space-to-depth must equal PixelUnshuffle/PixelShuffle."""

import torch
from torch import nn

from streamer.models.fast import BLOCK, GAIN_MAX, FastNet


def _reference(m: FastNet, x: torch.Tensor) -> torch.Tensor:
    us, ps = nn.PixelUnshuffle(BLOCK), nn.PixelShuffle(BLOCK)
    xs = us(x)
    e1 = m.enc1(m.stem(xs))
    e2 = m.enc2(m.down2(e1))
    mid = m.mid(m.down3(e2))
    d2 = m.dec2(m.up3(mid) + e2)
    d1 = m.dec1(m.up2(d2) + e1)
    gb = m.head(d1) + m.head_x(xs)
    g = torch.clamp(ps(gb[:, :48]) + 1.0, 0.0, GAIN_MAX)
    return torch.clamp(g * x + ps(gb[:, 48:]), 0.0, 1.0)


def test_fast_forward_equals_pixel_shuffle_formulation():
    torch.manual_seed(0)
    m = FastNet().eval()
    with torch.no_grad():
        m.head.weight.normal_(std=0.05)  # a head far from identity, so the blend matters
        m.head.bias.normal_(std=0.05)
        x = torch.rand(2, 3, 48, 80)
        diff = (m(x) - _reference(m, x)).abs().max().item()
    assert diff < 1e-5


def test_fast_starts_near_identity():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert (FastNet().eval()(x) - x).abs().max().item() < 0.05


def test_fast_state_dict_has_no_fixed_buffers():
    # the one-hot space-to-depth kernel is rebuilt, never saved
    assert not any(k.startswith("s2d") for k in FastNet().state_dict())
