"""Where a stage learns which weights to load for a role, and where loaded models stay warm.

The registry (backend/models.py) maps roles ("depth", "matte", "upscaler") to a hub id, a folder or a
file, resolves them to local paths (downloading only when the models file allows it) and keeps loaded
models warm between jobs. A plain {role: path} dict works too (tests, notebooks), without the cache.
"""

from __future__ import annotations

from typing import Any, Callable

from backend.loaders.matte import DEFAULT_MATTE_MODEL, REMBG_MODELS
from backend.loaders.missing import ModelMissing
from backend.stages.base import StageContext


def _registry(ctx: StageContext) -> Any:
    if ctx.models is not None:
        return ctx.models
    from backend.models import load_registry  # imported late: backend.models imports backend.stages

    return load_registry()


def model_source(ctx: StageContext, role: str) -> tuple[str, bool]:
    """(source, local_files_only) for `role`: a local path, or a rembg model name for the matte role."""
    registry = _registry(ctx)
    if isinstance(registry, dict):
        if role not in registry:
            raise ModelMissing(role, f"(no {role!r} entry)", f"add a {role!r} entry to the model config")
        return str(registry[role]), True
    if role == "matte":  # rembg names ("u2net_human_seg") are not paths; rembg finds their files itself
        ref = registry.spec(role).ref if registry.has(role) else DEFAULT_MATTE_MODEL
        if ref in REMBG_MODELS:
            return ref, not registry.allow_download
    return str(registry.resolve(role).path), True   # the registry already fetched it if that was allowed


def warm(ctx: StageContext, role: str, key: tuple, load: Callable[[], Any]) -> Any:
    """`load()` once per key, kept warm in the registry's cache (one slot per role) when there is one."""
    get_or_load = getattr(ctx.models, "get_or_load", None)
    if get_or_load is None:
        return load()
    return get_or_load((role, *key), load, slot=role)
