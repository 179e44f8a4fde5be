"""FastNet: the product's default restorer, built for real time on CPU and Jetson.

Why this shape (experiments in docs/model-log.md)
--------------------------------------------------
* The trunk works at 1/4, 1/8 and 1/16 resolution. Each 1/4-resolution position sees its 4×4
  block of input pixels as 48 channels (space-to-depth keeps every pixel), so nothing is lost,
  while the expensive tensors are 16× smaller than the frame. The 1/16 stage with a dilated conv
  gives a receptive field of ~250 px: big drops and stains on a 1080p frame fit inside it.
* The head does not paint pixels. For each of the 16 pixels of a block and each colour it
  predicts a gain ``g`` and an offset ``b`` and returns ``clean = g·x + b`` with the input
  pixel ``x``. Eigen et al.'s dirt model I' = p·α⊙D + (1−α)⊙I inverts exactly to such an affine
  map (g = 1/(1−α), b = −p·α·D/(1−α)); screen-blended streaks do too. Opaque flecks and drops
  need inpainting: g → 0 and ``b`` carries the content. The head also sees the block's own
  pixels (``head_x``), so a sharp fleck inside a block can be told apart from its neighbours.
* ``g`` is bounded to [0, 4] (α ≤ 0.75 is invertible; beyond it inpaint): an unbounded gain
  turned dark opaque specks into bright blobs.
* Identity at start-up (head near zero): clean frames are left alone from the first step.
* Frame-wide context (``glob``, shipped since E31): the mean of the 1/16 features over the whole
  frame, through a 1×1 conv, is added at every 1/16 position. The dirt's colour is one per frame
  and whether a frame is dirty at all is a frame-wide fact; with it the net cleans more dirt and
  leaves clean frames alone better (model-log E31). Tiles (``tile:``) each get their own mean.
  ``ctx`` (E45, off by default) adds a 1/32 stage for regional context between the two; it
  changed nothing against its control run.
* Drops (``drops=True``, the opt-in ``fast-drops``): no gain/offset of a drop's pixels brings the
  scene back, and restoration loss never taught this trunk where drops are (docs/model-log.md
  E13–E17). A separate half-width ``DropFinder`` learns that from the drop masks; its mask
  replaces the restored pixels by a fill from their surroundings (``fill.Fill``, at 1/4).
* Standard ops only (Conv, DepthToSpace, Resize, LeakyReLU, Add, Mul, Clip, GlobalAveragePool,
  GlobalMaxPool): exports to ONNX opset 17 and quantizes to INT8. Upsampling is 1×1 conv +
  nearest resize, not a transposed conv, because ONNX Runtime has no INT8 ConvTranspose.
  Space-to-depth is a conv with a fixed one-hot kernel (ORT ran PixelUnshuffle's 6-D transpose
  4× slower); back is DepthToSpace.

Value range: input and output N×3×H×W float in [0, 1]; H and W multiples of 16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from streamer.models.fill import Fill
from streamer.models.registry import register

BLOCK = 4  # space-to-depth factor of the first stage
GAIN_MAX = 4.0
PRIOR_WINDOWS = (7, 15)  # dark/bright-channel windows in 1/4-resolution positions (28, 60 px)


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
        nn.LeakyReLU(0.1, inplace=True),
    )


class _Up(nn.Module):
    """×2 upsampling: 1×1 conv at the low resolution, then nearest resize (INT8-friendly)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.act(self.conv(x)), scale_factor=2.0, mode="nearest")


def space_to_depth_weight(r: int = BLOCK) -> torch.Tensor:
    """One-hot r×r/stride-r kernel: conv with it == PixelUnshuffle(r) (channel c·r² + dy·r + dx)."""
    w = torch.zeros(3 * r * r, 3, r, r)
    for c in range(3):
        for dy in range(r):
            for dx in range(r):
                w[c * r * r + dy * r + dx, c, dy, dx] = 1.0
    return w


def _build_unet(m: nn.Module, c1: int, c2: int, c3: int) -> None:
    """The trunk's layers as attributes of ``m`` (flat names, as in every shipped weight file)."""
    m.stem = nn.Sequential(nn.Conv2d(3 * BLOCK * BLOCK, c1, 1), nn.LeakyReLU(0.1, inplace=True))
    m.enc1 = _conv(c1, c1)  # 1/4
    m.down2 = _conv(c1, c2, stride=2)  # 1/8
    m.enc2 = _conv(c2, c2)
    m.down3 = _conv(c2, c3, stride=2)  # 1/16
    m.mid = nn.Sequential(_conv(c3, c3, dilation=2), _conv(c3, c3))
    m.up3 = _Up(c3, c2)
    m.dec2 = _conv(c2, c2)
    m.up2 = _Up(c2, c1)
    m.dec1 = _conv(c1, c1)


class _Context32(nn.Module):
    """``ctx`` (E45): a 1/32 stage (dilated 2 and 4) whose output, through a zero 1×1 conv, is
    added at 1/16. Regional context between the trunk's reach (~90 px each side) and ``glob``'s
    whole frame — a veil over part of the frame — reaching ~300 px each side, for ~0.25 kFLOP/px.
    Resized back to the 1/16 grid's exact size, so frames stay multiples of 16 (720p: 45×80 at
    1/16, 23×40 here)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.down = _conv(c, c, stride=2)
        self.conv = nn.Sequential(_conv(c, c, dilation=2), _conv(c, c, dilation=4))
        _kaiming(self)
        self.out = _zero_conv(c, c)

    def forward(self, e3: torch.Tensor) -> torch.Tensor:
        c = self.conv(self.down(e3))
        return self.out(F.interpolate(c, size=e3.shape[-2:], mode="nearest"))


def _unet(m: nn.Module, xs: torch.Tensor, extra: torch.Tensor | None = None,
          glob: nn.Module | None = None, glob_max: nn.Module | None = None,
          ctx: nn.Module | None = None) -> torch.Tensor:
    """Space-to-depth input (plus ``extra`` at the stem) -> 1/4-resolution decoder features,
    through ``_build_unet``'s layers; ``glob`` / ``glob_max`` map the frame's mean / maximum 1/16
    features to a vector added at every 1/16 position (E31, E34); ``ctx`` adds a 1/32 stage (E45)."""
    stem = m.stem(xs)
    e1 = m.enc1(stem if extra is None else stem + extra)
    e2 = m.enc2(m.down2(e1))
    e3 = m.down3(e2)
    pooled = e3  # both pool the encoder's features, not each other's sum
    if glob is not None:  # GlobalAveragePool -> 1x1 conv -> broadcast Add: standard ONNX ops
        e3 = e3 + glob(F.adaptive_avg_pool2d(pooled, 1))
    if glob_max is not None:  # GlobalMaxPool, likewise
        e3 = e3 + glob_max(F.adaptive_max_pool2d(pooled, 1))
    if ctx is not None:
        e3 = e3 + ctx(pooled)
    mid = m.mid(e3)
    d2 = m.dec2(m.up3(mid) + e2)
    return m.dec1(m.up2(d2) + e1)


def dark_bright(xs: torch.Tensor, sizes: tuple[int, ...] = PRIOR_WINDOWS) -> torch.Tensor:
    """Local minimum and maximum of all colours over k×k blocks (k·4 px windows), per 1/4 position.

    Eigen's dirt model I' = p·α·D + (1−α)·I is the haze model (airlight p·D, transmission 1−α):
    a veil lifts the darkest value of a neighbourhood (He et al.'s dark channel) or lowers the
    brightest. Min/max over a 28–60 px window is easy to compute and hard for a small conv
    stack to learn; ReduceMin/Max and MaxPool export and quantize as standard ops."""
    lo, hi = xs.amin(1, keepdim=True), xs.amax(1, keepdim=True)
    out = []
    for k in sizes:
        out += [-F.max_pool2d(-lo, k, 1, k // 2), F.max_pool2d(hi, k, 1, k // 2)]
    return torch.cat(out, 1)


def _kaiming(m: nn.Module) -> None:
    for conv in m.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.kaiming_normal_(conv.weight, a=0.1, nonlinearity="leaky_relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)


class DropFinder(nn.Module):
    """Where are the drops? A slim copy of the trunk with one logit per pixel (16 per block).

    Restoration alone never taught FastNet's features to find drops (docs/model-log.md E13,
    E15), while the same trunk trained on the drop mask (binary cross-entropy) finds them within
    a few thousand steps. So detection gets its own small net and its own loss; its mask gates
    the restored frame (``fill.Fill``): masked pixels are filled from their surroundings.
    """

    def __init__(self, c1: int = 16, c2: int = 24, c3: int = 32, context: int = 0) -> None:
        super().__init__()
        _build_unet(self, c1, c2, c3)
        self.head = nn.Conv2d(c1, BLOCK * BLOCK, 1)
        # ``context``: channels of the restorer's 1/4-resolution features, added to the stem (E16):
        # they know dirt and streaks (E13m: 0.43 correlation with α), the finder's false alarms
        self.context = nn.Conv2d(context, c1, 1) if context else None
        _kaiming(self)
        nn.init.constant_(self.head.bias, -4.0)  # σ(−4) ≈ 0.02: nothing is a drop at start-up
        if self.context is not None:  # zero: a finder trained without context starts unchanged
            nn.init.zeros_(self.context.weight)

    def forward(self, xs: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Space-to-depth frame (and the restorer's features) -> drop logits N×16×H/4×W/4."""
        extra = self.context(features) if self.context is not None else None
        return self.head(_unet(self, xs, extra))


def _zero_conv(cin: int, cout: int) -> nn.Conv2d:
    """A 1×1 conv that starts at zero: an option added to trained weights changes nothing yet."""
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


# What INT8 leaves in float (ModelSpec.int8_fp32: "/x/" is a module's subtree), measured with
# scripts/int8_probe.py (docs/model-log.md, sessions 20-21). All-INT8 cost 0.3-0.6 dB of dirt gain:
# - the stem, the first 1x1 conv on each 4x4 block's 48 raw pixel values (0.3-0.6 -> 0.07-0.14 dB
#   on crops);
# - the 1/16 stage's mid convs and up3's conv: fed by the frame-wide mean, their activations
#   follow the whole frame's content, and dirt over a frame filled with sky, sand or sea drives
#   them 2-5x past anything calib/ shows, so calibrated ranges clip them there (whole photos
#   0.45-0.48 -> 0.12-0.17 dB; without up3 it is worse than before). 1/256 of the pixels: within
#   this host's noise in speed.
INT8_FP32 = ("/stem/", "/mid/", "/up3/")


@register(
    "fast",
    weights="fast.safetensors",
    source="streamer design: gain/offset U-Net at 1/4-1/16 resolution (docs/model-log.md)",
    multiple=16,
    int8_fp32=INT8_FP32,
)
@register(
    "fast-drops",
    weights="fast-drops.safetensors",
    source="the shipped fast + a drop finder whose mask fills drops from around (docs/model-log.md E15-E26, E41)",
    multiple=16,
    # INT8 on the E36 restorer cost 0.54 dB of drop gain; keeping the finder and the gain/offset
    # heads fp32 brings it to 0.22 (docs/model-log.md, session 14)
    int8_fp32=("/drops/", "/blend/") + INT8_FP32,
    drops=True,
    drop_context=True,
)
class FastNet(nn.Module):
    """Space-to-depth(4) → U-Net over 1/4, 1/8, 1/16 → per-pixel gain/offset → depth-to-space.

    ``drops=True`` adds a ``DropFinder`` whose mask fills drops from around (E15)."""

    def __init__(self, c1: int = 32, c2: int = 48, c3: int = 64, drops: bool = False,
                 drop_context: bool = False, priors: bool = False, glob: bool = False,
                 glob_max: bool = False, ctx: bool = False) -> None:
        super().__init__()
        s = 3 * BLOCK * BLOCK
        _build_unet(self, c1, c2, c3)
        self.head = nn.Conv2d(c1, 2 * s, 1)  # (g-1, b) × 3 colours × 4×4 pixels
        self.head_x = nn.Conv2d(s, 2 * s, 1, bias=False)  # the block's own pixels
        self.blend = _Blend()
        self.register_buffer("s2d", space_to_depth_weight(), persistent=False)
        _kaiming(self)
        for m in (self.head, self.head_x):
            nn.init.normal_(m.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)
        self.drops = DropFinder(c1 // 2, c2 // 2, c3 // 2, context=c1 if drop_context else 0) if drops else None
        # ``priors`` (E29): dark/bright-channel maps into the stem; zero, so older weights start unchanged
        self.prior = _zero_conv(2 * len(PRIOR_WINDOWS), c1) if priors else None
        # ``glob`` (E31): the dirt's colour p·D is one per frame, and spots anywhere show it; a
        # frame-wide mean of the 1/16 features, through a zero 1×1 conv (older weights unchanged)
        self.glob = _zero_conv(c3, c3) if glob else None
        # ``glob_max`` (E34): the frame's strongest response too ("a spot somewhere"), which a
        # mean over a mostly clean frame dilutes (CBAM-style average + max)
        self.glob_max = _zero_conv(c3, c3) if glob_max else None
        # ``ctx`` (E45): a 1/32 stage for regional context; its output conv starts at zero
        self.ctx = _Context32(c3) if ctx else None

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(space-to-depth input, 1/4-resolution decoder features); training taps the latter."""
        xs = F.conv2d(x, self.s2d, stride=BLOCK)  # N×48×H/4×W/4, channel 16c + 4dy + dx
        extra = self.prior(dark_bright(xs)) if self.prior is not None else None
        return xs, _unet(self, xs, extra, self.glob, self.glob_max, self.ctx)

    def drop_logits(self, xs: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
        """Full-resolution N×1×H×W drop logits (training: ``drop_loss``)."""
        return F.pixel_shuffle(self.drops(xs, d1), BLOCK)

    def restore(self, x: torch.Tensor, xs: torch.Tensor, d1: torch.Tensor,
                drop_logits: torch.Tensor | None = None) -> torch.Tensor:
        """``drop_logits``: the finder's output from ``drop_logits()`` when the caller already has
        it (training with ``drop_loss``), so the finder runs once per step."""
        hole = None
        if self.drops is not None:
            z = self.drops(xs, d1) if drop_logits is None else F.pixel_unshuffle(drop_logits, BLOCK)
            hole = torch.sigmoid(z)
        return self.blend(x, xs, d1, self.head, self.head_x, hole)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.restore(x, *self.features(x))


class _Blend(nn.Module):
    """clean = clamp(g)·x + b per pixel, then depth-to-space. A module without parameters, so
    its ONNX nodes are named ``/blend/…``: the INT8 export keeps them (except the head's convs)
    fp32."""

    def __init__(self) -> None:
        super().__init__()
        self.fill = Fill(BLOCK)  # ONNX nodes /blend/fill/…: kept fp32 by the INT8 export

    def forward(self, x: torch.Tensor, xs: torch.Tensor, d1: torch.Tensor, head: nn.Conv2d,
                head_x: nn.Conv2d, hole: torch.Tensor | None = None) -> torch.Tensor:
        s = 3 * BLOCK * BLOCK  # a constant, so the weight slices fold at export
        # gain and offset by separate convs on weight slices (folded at export): a Split of one
        # 96-channel output ran as a slow reference kernel in OpenVINO
        w, bias, wx = head.weight, head.bias, head_x.weight
        g = F.conv2d(d1, w[:s], bias[:s]) + F.conv2d(xs, wx[:s])
        b = F.conv2d(d1, w[s:], bias[s:]) + F.conv2d(xs, wx[s:])
        clean = torch.clamp(torch.clamp(g + 1.0, 0.0, GAIN_MAX) * xs + b, 0.0, 1.0)
        if hole is not None:  # drops: filled from their surroundings (fill.py)
            clean = self.fill(clean, hole)
        return F.pixel_shuffle(clean, BLOCK)  # DepthToSpace: fast in ORT and OpenVINO
