"""Multiply-adds counted from the graph (2 FLOP each), per output pixel, for `streamer models`."""

from __future__ import annotations

import torch
from torch import nn


def count_flops_per_px(model: nn.Module, size: tuple[int, int] = (256, 256)) -> float:
    """Convolution and matmul FLOPs on a probe input, divided by output pixels.

    Counted by PyTorch's FlopCounterMode at the aten level, so functional convs (FastNet's
    space-to-depth and its head on weight slices) count like modules do. Activations, adds and
    pixel shuffles are left out: they are memory traffic, not arithmetic, and the usual FLOP
    tables (and the issue's 10 kFLOP budget) count convolutions only.
    """
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.rand(1, 3, *size, device=device))
    return counter.get_total_flops() / (out.shape[-2] * out.shape[-1])


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_weights(model: nn.Module) -> int:
    """Weights without biases: the number the Eigen et al. paper quotes (753,664)."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.endswith("bias"))
