"""Rendering a shot's frames to numbered PNGs, one frame at a time, skipping those already written.

A frame is rendered under a temporary name and renamed when complete, so an interrupted render leaves
only whole frames behind and the next run renders exactly the missing ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import bpy

from blender_addon.compat import set_media_type
from blender_addon.headless.errors import ShotError

FINAL_SIZE = (3840, 2160)


def configure(scene: bpy.types.Scene, size: tuple[int, int] | None = None, samples: int | None = None) -> None:
    """Output as 8-bit RGB PNG at `size`; `samples` overrides Cycles' count (the scene's own otherwise)."""
    if size is not None:
        scene.render.resolution_x, scene.render.resolution_y = size
        scene.render.resolution_percentage = 100
    if samples is not None and scene.render.engine == "CYCLES":
        scene.cycles.samples = samples
    settings = scene.render.image_settings
    set_media_type(settings, "IMAGE")
    settings.file_format = "PNG"
    settings.color_mode = "RGB"
    settings.color_depth = "8"
    scene.render.use_file_extension = False
    scene.render.use_persistent_data = True  # keep the BVH and textures between frames


def frame_path(folder: Path, frame: int) -> Path:
    return folder / f"{frame:04d}.png"


def render_frames(scene: bpy.types.Scene, frames: list[int], folder: Path, *, step: str = "render",
                  progress: Callable[[int, int, str], None] | None = None, clean: bool = True) -> dict:
    """Render `frames` of `scene` into `folder`. Returns {"frames", "kept", "rendered"}. `clean`: remove what an
    interrupted run was writing (not when other renderers share the folder: a cluster's chunks)."""
    folder.mkdir(parents=True, exist_ok=True)
    if clean:
        remove_partial_frames(folder)
    todo = [f for f in frames if not frame_path(folder, f).is_file()]
    kept = len(frames) - len(todo)
    if progress:
        progress(kept, len(frames), "(resumed)" if kept else "")
    for i, frame in enumerate(todo, 1):
        render_one(scene, frame, frame_path(folder, frame), step=step)
        if progress:
            progress(kept + i, len(frames), f"frame {frame}")
    return {"frames": len(frames), "kept": kept, "rendered": len(todo)}


def remove_partial_frames(folder: Path) -> None:
    for stale in folder.glob(".*.tmp.png"):
        stale.unlink(missing_ok=True)


def render_one(scene: bpy.types.Scene, frame: int, path: Path, *, step: str = "render") -> Path:
    # this process's own temporary name: a retried cluster chunk may render a frame while the first try,
    # orphaned on a lost node, still writes it; each renames a whole frame into place
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    scene.frame_set(frame)
    scene.render.filepath = str(tmp)
    try:
        bpy.ops.render.render(write_still=True, scene=scene.name)
    except RuntimeError as e:
        raise ShotError(step, f"Blender could not render it: {e}", frame=frame) from None
    if not tmp.is_file():
        raise ShotError(step, f"Blender rendered but wrote no file at {tmp}", frame=frame)
    tmp.replace(path)
    return path
