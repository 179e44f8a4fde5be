"""Name -> architecture table, filled by the ``@register`` decorator in each model file.

A *model* here is an architecture plus an optional shipped weight set, e.g. ``eigen2013-dirt`` and
``eigen2013-rain`` share one architecture with different weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from streamer.errors import ConfigError, did_you_mean

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class ModelSpec:
    """What `streamer models` shows and what the loader needs."""

    name: str
    builder: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None  # file name under streamer/weights/
    source: str = ""  # paper / design note
    corruption: str = "dirt+raindrop+streaks"
    multiple: int = 1  # input H and W are padded up to a multiple of this
    # ONNX nodes that INT8 exports keep fp32 (beyond the usual output tail): the parts whose
    # quantization costs more gain than issue 9's 0.3 dB budget allows. "/stem/" (ending in "/")
    # is a module's subtree; "/Add" (no "/" at the end) is that one node (ort_int8.keeps_fp32)
    int8_fp32: tuple[str, ...] = ()

    def build(self) -> nn.Module:
        return self.builder(**self.kwargs)

    @property
    def weights_path(self) -> Path | None:
        return WEIGHTS_DIR / self.weights if self.weights else None


_REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str,
    *,
    weights: str | None = None,
    source: str = "",
    corruption: str = "dirt+raindrop+streaks",
    multiple: int = 1,
    int8_fp32: tuple[str, ...] = (),
    **kwargs: Any,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Class decorator: ``@register("fast", weights="fast.safetensors")``; may be stacked."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelSpec(name, builder, kwargs, weights, source, corruption, multiple, int8_fp32)
        return builder

    return deco


def get_spec(name: str) -> ModelSpec:
    """Look a model up by name; unknown names get a close-match hint."""
    try:
        return _REGISTRY[name]
    except KeyError:
        hint = did_you_mean(name, _REGISTRY)
        raise ConfigError(
            f"unknown model {name!r}{'; ' + hint if hint else ''} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


def list_specs() -> list[ModelSpec]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
