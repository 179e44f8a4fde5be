"""Typed configuration: pydantic models mirror the YAML key for key.

``load_config`` is the only YAML reader; nothing past it handles raw dicts. Unknown keys and wrong
types become one ``ConfigError`` line naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamer.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base: unknown keys are errors, field docstrings become descriptions."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class TrainConfig(Strict):
    """`streamer train --config configs/train_<model>.yaml`."""

    model: str = "fast"
    """Registered architecture to train (see `streamer models`)."""
    data: Path = Path("../shared/data/images")
    """Folder of clean photos; split into train/validation by a fixed hash rule."""
    out: Path = Path("runs/fast")
    """Where checkpoints, the metrics log and the training card go."""
    seed: int = 0
    """Seeds patch sampling, synthesis and initialisation."""
    patch: int = 128
    """Training patch side in pixels (the paper used 64)."""
    batch: int = 16
    """Patches per step."""
    steps: int = 100_000
    """Total optimisation steps (the schedule is defined over this many)."""
    optimizer: Literal["adamw", "sgd-paper"] = "adamw"
    """`sgd-paper`: Eigen et al.'s SGD, lr 0.001/(1+5t·1e-7)."""
    lr: float = 2e-3
    """Peak learning rate (AdamW) or the paper's base rate (SGD)."""
    loss: Literal["log-mse", "mse", "l1"] = "log-mse"
    """log-mse = mean over patches of log10(MSE): optimises mean PSNR directly."""
    mix_dirt: float = 0.45
    """Share of patches with synthetic dirt."""
    mix_raindrop: float = 0.2
    """Share of patches with raindrops."""
    mix_streaks: float = 0.2
    """Share of patches with rain streaks; the rest stay clean."""
    workers: int = 1
    """Data-synthesis worker processes."""
    threads: int = 2
    """Torch intra-op threads for the training step."""
    val_every: int = 1000
    """Validate and checkpoint every this many steps."""
    val_crop: int = 256
    """Centre crop side of validation images (speed)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train; auto = CUDA when present."""
    max_minutes: float = Field(default=0.0, ge=0.0)
    """Stop (after a checkpoint) once this much wall time is spent; 0 = no limit."""


def load_config(cls: type[M], path: str | Path | None, overrides: dict[str, Any] | None = None) -> M:
    """Read YAML at ``path`` (or nothing), apply ``overrides``, validate into ``cls``."""
    data: dict[str, Any] = {}
    label = str(path) if path else "<defaults>"
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}:{where} malformed YAML ({getattr(exc, 'problem', exc)})") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping of keys, not {type(loaded).__name__}")
        data = loaded
    data = data | {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "<top>"
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{label}: {where}: {msg}") from exc
