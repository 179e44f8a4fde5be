"""Restoration networks. Each file registers itself; imported here by name, no directory scan."""

from __future__ import annotations

from streamer.models import drn  # noqa: F401  (registers "drn")
from streamer.models import eigen2013  # noqa: F401  (registers "eigen2013-dirt", "eigen2013-rain")
from streamer.models import fast  # noqa: F401  (registers "fast")
from streamer.models.registry import ModelSpec, get_spec, list_specs, register


def describe_models() -> list[dict]:
    """Rows for `streamer models`: params, weights (paper count), FLOPs/px at 1280×720, weights."""
    from streamer.models.flops import count_flops_per_px, count_params, count_weights
    from streamer.models.weights import arch_kwargs

    rows = []
    for spec in list_specs():
        wp = spec.weights_path
        kwargs = arch_kwargs(spec, wp)  # as shipped (e.g. glob); a missing file stores none
        net = spec.builder(**kwargs).eval()
        meta = spec.builder(**kwargs).to("meta").eval()  # shapes only: FLOPs at 720p cost no arithmetic
        rows.append({
            "name": spec.name,
            "params": count_params(net),
            "weights_count": count_weights(net),
            "flops_per_px": count_flops_per_px(meta, (720, 1280)),
            "corruption": spec.corruption,
            "weights_file": str(wp.relative_to(wp.parent.parent.parent)) if wp and wp.exists() else
            (f"{wp.name} (missing)" if wp else None),
            "source": spec.source,
        })
    return rows


__all__ = ["ModelSpec", "describe_models", "get_spec", "list_specs", "register"]
