"""Movies with Blender's own FFMPEG output: a PNG sequence to an H.264 mp4, through the sequencer.

The frames are never rendered twice: a throw-away scene holds one image strip of the sequence and
"renders" it, which only encodes. When this Blender build has no FFMPEG, `encode_mp4` raises
MovieError saying so, and callers keep the PNGs.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from blender_addon.compat import set_media_type
from blender_addon.scene.video import has_ffmpeg


class MovieError(RuntimeError):
    """The mp4 could not be written; the PNG frames are unaffected."""


def encode_mp4(frames_dir: str | Path, out_path: str | Path, fps: int = 24, pattern: str = "[0-9][0-9][0-9][0-9].png") -> Path:
    frames_dir, out_path = Path(frames_dir), Path(out_path)
    files = sorted(frames_dir.glob(pattern))
    if not files:
        raise MovieError(f"no frames matching {pattern} in {frames_dir} to encode")
    if not has_ffmpeg():
        raise MovieError("this Blender build has no FFMPEG output; the PNG frames are the result")
    first = bpy.data.images.load(str(files[0]), check_existing=False)
    width, height = first.size
    bpy.data.images.remove(first)

    scene = bpy.data.scenes.new("Encode")
    try:
        editor = scene.sequence_editor_create()
        strips = editor.strips if hasattr(editor, "strips") else editor.sequences
        strip = strips.new_image("frames", str(files[0]), channel=1, frame_start=1)
        for path in files[1:]:
            strip.elements.append(path.name)
        scene.frame_start, scene.frame_end = 1, len(files)
        render = scene.render
        render.resolution_x, render.resolution_y = width + width % 2, height + height % 2  # H.264 needs even sizes
        render.resolution_percentage = 100
        render.fps = fps
        render.use_sequencer = True
        render.use_compositing = False
        scene.view_settings.view_transform = "Standard"
        settings = render.image_settings
        set_media_type(settings, "VIDEO")
        settings.file_format = "FFMPEG"
        render.ffmpeg.format = "MPEG4"
        render.ffmpeg.codec = "H264"
        render.ffmpeg.constant_rate_factor = "HIGH"
        render.ffmpeg.ffmpeg_preset = "REALTIME"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(f".{out_path.stem}.tmp.mp4")
        render.filepath = str(tmp)
        render.use_file_extension = False
        bpy.ops.render.render(animation=True, scene=scene.name)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise MovieError(f"Blender's FFMPEG output wrote nothing to {tmp}")
        tmp.replace(out_path)
    except RuntimeError as e:
        if isinstance(e, MovieError):
            raise
        raise MovieError(f"Blender's FFMPEG output failed: {e}") from e
    finally:
        bpy.data.scenes.remove(scene)
    return out_path
