"""Weights in and out: safetensors only (no pickle), every key and shape checked."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from streamer.errors import ConfigError, WeightsError, looked_in


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


ARCH_KEY = "arch"  # safetensors metadata: the architecture options the tensors were trained with
MODEL_KEY = "model"  # safetensors metadata: the registered model the tensors belong to


def _metadata(path: str | Path) -> dict[str, str] | None:
    """The safetensors header's metadata; None for unreadable files (the loader says why)."""
    try:
        with safe_open(str(path), "pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return None


def weights_arch(path: str | Path) -> dict[str, Any]:
    """Architecture options stored with the weights (``model_kwargs`` of the training run), e.g.
    ``{"c1": 16, "c2": 24, "c3": 32}``; empty for files without them or unreadable ones (the
    loader then says what is wrong)."""
    meta = _metadata(path) or {}
    if ARCH_KEY in meta:
        return _json_object(path, meta, ARCH_KEY)
    card = _json_object(path, meta, "card")  # final.safetensors of older runs
    kwargs = card.get("config", {}).get("model_kwargs", {}) if isinstance(card.get("config"), dict) else {}
    return kwargs if isinstance(kwargs, dict) else {}


def _json_object(path: str | Path, meta: dict[str, str], key: str) -> dict[str, Any]:
    """A JSON object stored in the metadata under ``key`` ({} when absent); damaged is an error."""
    try:
        value = json.loads(meta.get(key, "{}"))
    except ValueError as exc:
        raise WeightsError(f"{path}: damaged metadata {key!r} ({exc}); the tensors may be fine, but "
                           "re-save them without it") from None
    if not isinstance(value, dict):
        raise WeightsError(f"{path}: damaged metadata {key!r} (a JSON object expected, not "
                           f"{type(value).__name__}); the tensors may be fine, but re-save them without it")
    return value


def _model_named(meta: dict[str, str], path: str | Path = "") -> str | None:
    if meta.get(MODEL_KEY):
        return meta[MODEL_KEY]
    named = _json_object(path, meta, "card").get("model")
    return named if isinstance(named, str) else None


def spec_for_weights(path: str | Path, arch: str | None = None) -> Any:
    """The model spec for a .safetensors file: ``arch`` if given, else what the file says it
    is, else its file name (``fast.safetensors``)."""
    from streamer.models.registry import get_spec

    name = arch
    if name is None:  # a missing or broken file says so, not "the file does not say which model"
        if not Path(path).is_file():
            raise WeightsError(f"{path}: weights file not found{looked_in(path)}")
        meta = _metadata(path)
        if meta is None:
            raise WeightsError(f"{path}: not a readable safetensors file")
        name = _model_named(meta, path)
    if name is None:
        try:
            return get_spec(Path(path).stem)
        except ConfigError:
            raise ConfigError(f"{path}: the file does not say which model it is; "
                              "give the architecture with --arch (e.g. --arch fast)") from None
    return get_spec(name)


def arch_kwargs(spec: Any, path: str | Path | None) -> dict[str, Any]:
    """``spec``'s constructor options, overridden by those stored in ``path`` (if any)."""
    return spec.kwargs | (weights_arch(path) if path is not None else {})


def build_with_weights(spec: Any, path: str | Path) -> nn.Module:
    """``spec``'s architecture with the options stored in ``path`` (e.g. a width-0.5 fine-tune of
    ``fast``), filled from it: trained variants run, export and evaluate under the model's name."""
    import inspect

    kwargs = arch_kwargs(spec, path)
    params = inspect.signature(spec.builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        foreign = sorted(set(kwargs) - set(params))
        if foreign:  # e.g. fast's `glob` given to drn: a TypeError traceback from the constructor
            named = _model_named(_metadata(path) or {}, path)
            hint = f"; they are {named}'s (--arch {named})" if named and named != spec.name else ""
            raise WeightsError(f"{path} (model {spec.name}): weights are for another architecture: "
                               f"they were trained with option {foreign[0]}, which {spec.name} does not have{hint}")
    return load_weights(spec.builder(**kwargs), path, name=spec.name)


def load_weights(model: nn.Module, path: str | Path, *, name: str = "",
                 allow_missing: tuple[str, ...] = ()) -> nn.Module:
    """Fill ``model`` from a safetensors file; refuse anything that does not fit exactly.

    ``allow_missing``: key prefixes the file may lack (a new part, e.g. ``drops.``, trained on
    top of older weights); those keep the model's own values."""
    path = Path(path)
    label = f"{path}" + (f" (model {name})" if name else "")
    if not path.exists():
        raise WeightsError(f"{label}: weights file not found{looked_in(path)}")
    if path.suffix in {".pt", ".pth", ".ckpt", ".bin"}:
        target = path.with_suffix(".safetensors")
        raise WeightsError(
            f"{label}: pickled weights are not loaded for safety; convert them once (tensors only, "
            f"torch.load(weights_only=True)): python -c \"from streamer.models.weights import "
            f"convert_pickle; convert_pickle('{path}', '{target}')\""
        )
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{label}: not a readable safetensors file ({exc})") from exc
    expected = model.state_dict()
    missing = sorted(k for k in set(expected) - set(state) if not k.startswith(allow_missing))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise WeightsError(f"{label}: weights are for another architecture: {'; '.join(parts)}")
    for key, tensor in expected.items():
        if key in state and tuple(state[key].shape) != tuple(tensor.shape):
            raise WeightsError(
                f"{label}: {key} has shape {tuple(state[key].shape)}, the model needs "
                f"{tuple(tensor.shape)}; these weights are for another configuration"
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=not allow_missing)
    return model


def save_weights(
    model: nn.Module, path: str | Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Write contiguous float tensors plus string metadata (safetensors header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    write_safetensors(state, tmp, meta)
    tmp.replace(path)
    return path


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | Path,
                      metadata: dict[str, str] | None = None) -> None:
    """safetensors' ``save_file``, readable by other users (its writer makes files 0600, which a
    service user reading a model trained by another user cannot open)."""
    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, 0o644)  # not via os.umask(0): that would open a window for other threads' files


def convert_pickle(src: str | Path, dst: str | Path) -> Path:
    """Import a PyTorch checkpoint safely (tensors only) into safetensors."""
    try:
        state = torch.load(str(src), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles
        raise WeightsError(f"{src}: cannot be read as a tensors-only checkpoint ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{src}: holds no state dict")
    write_safetensors({k: v.contiguous() for k, v in state.items()}, dst)
    return Path(dst)
