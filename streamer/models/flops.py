"""Multiply-adds counted from the graph (2 FLOP each), per output pixel, for `streamer models`."""

from __future__ import annotations

import torch
from torch import nn


def count_flops_per_px(model: nn.Module, size: tuple[int, int] = (256, 256)) -> float:
    """Conv/ConvTranspose/Linear FLOPs on a probe input, divided by output pixels.

    Activations, adds and pixel shuffles are left out: they are memory traffic, not arithmetic,
    and the usual FLOP tables (and the issue's 10 kFLOP budget) count convolutions only.
    """
    total = 0

    def conv_hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.ConvTranspose2d):
            # every input pixel scatters into k*k outputs
            n_in = inp[0].numel() // inp[0].shape[1]
            kh, kw = mod.kernel_size
            total += 2 * n_in * mod.in_channels * (mod.out_channels // mod.groups) * kh * kw
        else:
            kh, kw = mod.kernel_size
            n_out = out.numel()
            total += 2 * n_out * (mod.in_channels // mod.groups) * kh * kw

    hooks = [
        m.register_forward_hook(conv_hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            out = model(torch.rand(1, 3, *size, device=device))
    finally:
        for h in hooks:
            h.remove()
    return total / (out.shape[-2] * out.shape[-1])


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_weights(model: nn.Module) -> int:
    """Weights without biases: the number the Eigen et al. paper quotes (753,664)."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.endswith("bias"))
