"""Checkpoints: model + optimizer tensors in safetensors, counters and RNG in JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from streamer.errors import WeightsError
from streamer.models.weights import load_weights, save_weights, write_safetensors


def save_checkpoint(out: Path, model: nn.Module, opt: torch.optim.Optimizer,
                    state: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out / "last.safetensors", metadata)
    flat: dict[str, torch.Tensor] = {}
    for idx, st in opt.state_dict()["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                flat[f"{idx}.{key}"] = val.detach().cpu().contiguous().reshape(val.shape)
    tmp = out / "optimizer.safetensors.tmp"
    write_safetensors(flat, tmp)
    tmp.replace(out / "optimizer.safetensors")
    tmp_json = out / "state.json.tmp"
    tmp_json.write_text(json.dumps(state, indent=2))
    tmp_json.replace(out / "state.json")


def load_checkpoint(out: Path, model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    if not (out / "state.json").exists():
        raise WeightsError(f"{out}: no checkpoint to resume from (state.json missing)")
    load_weights(model, out / "last.safetensors")
    flat = load_file(str(out / "optimizer.safetensors")) if (out / "optimizer.safetensors").exists() else {}
    sd = opt.state_dict()
    per_param: dict[int, dict[str, Any]] = {}
    for name, val in flat.items():
        idx, key = name.split(".", 1)
        per_param.setdefault(int(idx), {})[key] = val
    sd["state"] = per_param
    opt.load_state_dict(sd)
    return json.loads((out / "state.json").read_text())
