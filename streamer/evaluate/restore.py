"""Run a registered model on one whole image through torch: pad to ``spec.multiple``, crop back.

Kept here (offline evaluation) so eval does not depend on the live backends; reflect padding
matches what the tiler does at frame borders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamer.models import ModelSpec, get_spec
from streamer.models.weights import build_with_weights


def load_model(name: str, weights: str | Path | None = None) -> tuple[nn.Module, ModelSpec]:
    """Registered model in eval mode with its shipped weights (or ``weights``)."""
    spec = get_spec(name)
    path = Path(weights) if weights else spec.weights_path
    net = build_with_weights(spec, path) if path is not None else spec.build()
    return net.eval(), spec


@torch.no_grad()
def restore_image(net: nn.Module, img: np.ndarray, multiple: int = 1) -> np.ndarray:
    """float32 H×W×3 [0,1] -> same; the padding is cut off again."""
    h, w = img.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).unsqueeze(0)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")  # tiny crops
    y = net(x)[0, :, :h, :w]
    return np.clip(y.numpy().transpose(1, 2, 0), 0.0, 1.0).astype(np.float32)
