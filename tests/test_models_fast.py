"""FastNet's conv-based space-to-depth must equal PixelUnshuffle/PixelShuffle."""

import pytest
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


def test_gate_on_blocks_equals_the_full_resolution_gate():
    """FastNet fills drops on its 4×4 blocks; the same fill on the frame must agree."""
    from torch.nn import functional as F

    from streamer.models.fill import Fill

    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 96)
    hole = (torch.rand(2, 1, 64, 96) > 0.8).float() * torch.rand(2, 1, 64, 96)
    fill = Fill(BLOCK)
    a = F.pixel_unshuffle(fill.gate(x, hole), BLOCK)
    b = fill(F.pixel_unshuffle(x, BLOCK), F.pixel_unshuffle(hole, BLOCK))
    assert (a - b).abs().max().item() < 1e-5


def test_fill_blur_in_two_passes_equals_the_2d_gaussian():
    """The fill blurs by a column then a row pass; at the borders too that is the 2-D blur."""
    from torch.nn import functional as F

    from streamer.models.fill import SIGMA, Fill, gauss_weights

    gv, gh = gauss_weights(SIGMA, 4)
    k2 = gv[:, :, :, 0, None] * gh[:, :, 0, None, :]  # outer product, 4×1×K×K
    x = torch.rand(2, 4, 40, 56)
    ref = F.conv2d(x, k2, padding=k2.shape[-1] // 2, groups=4)
    assert abs(k2[0].sum().item() - 1.0) < 1e-6
    assert (Fill()._smooth(x) - ref).abs().max().item() < 1e-5


def test_fill_recovers_a_smooth_image_inside_a_hole():
    from streamer.models.fill import Fill

    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    smooth = torch.stack([xx, yy, 0.5 * (xx + yy)])[None]
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 20:36, 24:40] = 1.0
    hidden = smooth * (1 - hole) + hole * torch.tensor([1.0, 0.0, 1.0])[None, :, None, None]  # a magenta blot
    err_in = (hidden - smooth).abs()[..., 20:36, 24:40].mean().item()
    err_out = (Fill().gate(hidden, hole) - smooth).abs()[..., 20:36, 24:40].mean().item()
    assert err_out < 0.05 < err_in


def test_drop_finder_starts_quiet_and_fills_where_it_fires():
    torch.manual_seed(0)
    plain, gated = FastNet().eval(), FastNet(drops=True).eval()
    gated.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert (gated(x) - plain(x)).abs().mean().item() < 0.02  # bias −4: little gating at start
        gated.drops.head.bias.fill_(20.0)  # everything is a drop: the frame becomes its fill
        assert gated(x).std().item() < 0.5 * x.std().item()


def _assert_added_part_starts_silent(plain: FastNet, extended: FastNet, new_keys: list[str],
                                     shape: tuple[int, ...]) -> None:
    """``extended`` = ``plain`` + an option whose zero init must leave the output unchanged: the
    older weights load with exactly ``new_keys`` missing and give the same frame."""
    missing = extended.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == new_keys
    x = torch.rand(*shape)
    with torch.no_grad():
        assert torch.equal(plain(x), extended(x))


def test_drop_context_starts_as_the_finder_without_it():
    """E16: the restorer's features enter the finder through a zero-initialised 1×1 conv, so a
    finder trained without them loads and gives the same output."""
    torch.manual_seed(0)
    _assert_added_part_starts_silent(FastNet(drops=True).eval(), FastNet(drops=True, drop_context=True).eval(),
                                     ["drops.context.bias", "drops.context.weight"], (1, 3, 64, 64))


def test_restore_with_the_finders_logits_given_equals_computing_them():
    """Training passes the drop logits it already computed for the BCE; the output is the same."""
    torch.manual_seed(0)
    m = FastNet(drops=True, drop_context=True).eval()
    with torch.no_grad():
        m.drops.head.bias.fill_(0.0)  # a finder that fires, so the gate matters
        x = torch.rand(1, 3, 64, 96)
        xs, d1 = m.features(x)
        given = m.restore(x, xs, d1, m.drop_logits(xs, d1))
        assert torch.allclose(given, m.restore(x, xs, d1), atol=1e-6)
        assert (given - m.restore(x, xs, d1, torch.full((1, 1, 64, 96), -30.0))).abs().max() > 1e-3


@pytest.mark.parametrize("option,keys", [("priors", ["prior.bias", "prior.weight"]),
                                         ("glob", ["glob.bias", "glob.weight"]),
                                         ("glob_max", ["glob_max.bias", "glob_max.weight"]),
                                         ("ctx", ["ctx.conv.0.0.bias", "ctx.conv.0.0.weight", "ctx.conv.1.0.bias",
                                                  "ctx.conv.1.0.weight", "ctx.down.0.bias", "ctx.down.0.weight",
                                                  "ctx.out.bias", "ctx.out.weight"])])
def test_zero_initialised_option_starts_as_the_net_without_it(option, keys):
    """``priors=True`` (E29), ``glob=True`` (E31), ``glob_max=True`` (E34) and ``ctx=True`` (E45)
    end in a zero 1×1 conv: older weights load (new_parts) and give the same frame."""
    torch.manual_seed(0)
    plain = FastNet().eval()
    with torch.no_grad():
        plain.head.weight.normal_(std=0.05)
    _assert_added_part_starts_silent(plain, FastNet(**{option: True}).eval(), keys, (1, 3, 64, 96))


@pytest.mark.parametrize("option", [None, "glob", "glob_max"])
def test_glob_lets_a_far_corner_change_the_output_everywhere(option):
    """The point of ``glob`` / ``glob_max``: content ~400 px away, beyond the trunk's ~250-px
    receptive field, changes a pixel's output through the frame-wide mean / maximum; without
    either it cannot."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 512) * 0.5
    far = x.clone()
    far[..., 448:] = 1.0  # the right eighth turns white
    m = FastNet(**({option: True} if option else {})).eval()
    with torch.no_grad():
        m.head.weight.normal_(std=0.05)
        if option:
            getattr(m, option).weight.normal_(std=0.5)
        diff = (m(x) - m(far))[..., :64].abs().max().item()  # the left eighth
    assert (diff > 1e-4) is (option is not None), (option, diff)


@pytest.mark.parametrize("ctx", [False, True])
def test_ctx_stage_reaches_beyond_the_trunk_on_any_multiple_of_16(ctx):
    """``ctx`` (E45): a 1/32 stage resized back to the 1/16 grid, so a frame whose 1/16 grid is
    odd (720p: 45×80) works; content ~250 px away, past the trunk's reach, changes a pixel only
    with it, content ~950 px away never does (regional, not frame-wide like ``glob``)."""
    torch.manual_seed(0)
    m = FastNet(ctx=ctx).eval()
    with torch.no_grad():
        m.head.weight.normal_(std=0.05)
        if ctx:
            m.ctx.out.weight.normal_(std=0.5)
        x = torch.rand(1, 3, 80, 1024) * 0.5  # 1/16 grid 5×64, 1/32 grid 3×32
        assert m(x).shape == x.shape
        near, far = x.clone(), x.clone()
        near[..., 256:320] = 1.0
        far[..., 960:] = 1.0
        probe = slice(0, 16)
        assert bool((m(x) - m(near))[..., probe].abs().max() > 1e-4) is ctx
        assert torch.equal(m(x)[..., probe], m(far)[..., probe])


def test_dark_bright_are_local_min_and_max_of_all_colours():
    from torch.nn import functional as F

    from streamer.models.fast import dark_bright

    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    feats = dark_bright(F.pixel_unshuffle(x, BLOCK), sizes=(3,))
    assert feats.shape == (1, 2, 16, 16)
    # position (5, 7) at 1/4 sees blocks 4..6 × 6..8: pixels 16..27 × 24..35 of every colour
    window = x[0, :, 16:28, 24:36]
    assert float(feats[0, 0, 5, 7]) == float(window.min())
    assert float(feats[0, 1, 5, 7]) == float(window.max())
