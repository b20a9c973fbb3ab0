"""All or nothing for operators that build things: if the work fails half-way, what it created goes
and the settings it changed go back, so the artist never finds a half-built grey card in the scene.

    with Rollback() as undo:
        undo.set(scene.render, "resolution_x", 3840)  # remembered, put back on failure
        make_card(...)                                 # every new datablock is removed on failure

Blender's own undo does not help here: a failing operator returns CANCELLED without an undo step,
and scripts (the headless runner, tests) have no undo at all.
"""

from __future__ import annotations

import bpy

# bpy.data collections an operator of ours can add to
_KINDS = ("objects", "meshes", "materials", "images", "textures", "actions", "node_groups", "cameras", "lights",
          "collections", "worlds", "linestyles")


def _datablocks() -> dict[str, set[int]]:
    return {kind: {block.as_pointer() for block in getattr(bpy.data, kind)} for kind in _KINDS}


class Rollback:
    """Context manager: on an exception, remove the datablocks made inside and restore the settings
    changed through `set`, in reverse order; the exception still propagates."""

    def __init__(self):
        self._before: dict[str, set[int]] = {}
        self._saved: list[tuple[object, str, object]] = []

    def set(self, owner, attr: str, value) -> None:
        """setattr that is undone if the block fails."""
        self._saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)

    def __enter__(self) -> "Rollback":
        self._before = _datablocks()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            return False
        for owner, attr, value in reversed(self._saved):
            try:
                setattr(owner, attr, value)
            except (AttributeError, TypeError, ReferenceError):
                pass  # its owner went with the failure
        made = [block for kind in _KINDS for block in getattr(bpy.data, kind)
                if block.as_pointer() not in self._before[kind]]
        if made:
            bpy.data.batch_remove(made)
        return False
