"""Importing Ray with an error that says how to get it: the cluster is optional (`pip install ray`)."""

from __future__ import annotations

from backend.errors import StageError


def import_ray():
    """The `ray` module, or a StageError naming the install command when this Python lacks it."""
    try:
        import ray
    except ImportError as exc:
        raise StageError(f"the cluster needs Ray, which this Python ({_python()}) cannot import ({exc}); "
                         "install it with `pip install ray` (or `pip install 'diffusion-stage[cluster]'`), "
                         "or serve without --cluster", code="missing_dependency") from None
    return ray


def _python() -> str:
    import sys

    return sys.executable
