"""Restoration networks. Each file registers itself; imported here by name, no directory scan."""

from streamer.models import fast  # noqa: F401  (registers "fast")
from streamer.models.registry import ModelSpec, get_spec, list_specs, register

__all__ = ["ModelSpec", "get_spec", "list_specs", "register"]
