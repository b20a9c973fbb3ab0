"""A video file's frames, decoded by Blender's own FFmpeg through the sequencer (Blender's Python has no
OpenCV), each cached as a PNG so it is decoded once however often it is read.

A decode builds a throw-away scene holding one movie strip and "renders" the asked frames, which only
decodes and writes them; the scene is removed at once, so nothing is left in the artist's file. The cache
folder's name carries the video's size and modification time: a re-exported video gets a new cache.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import bpy

from ..compat import set_media_type

DECODE_SCENE = ".Stage Video Decode"


class VideoError(ValueError):
    """A video Blender cannot decode here; the message says what to do instead."""


def has_ffmpeg() -> bool:
    return bool(getattr(bpy.app.build_options, "codec_ffmpeg", False))


def cache_folder(video: Path, root: Path) -> Path:
    stat = video.stat()
    key = hashlib.sha1(f"{video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return root / f"{video.stem}-{key}"


class VideoFrames:
    """Frames 1..N of `video` as PNG paths in `cache_dir` (decoded on first use)."""

    def __init__(self, video: str | Path, cache_dir: str | Path):
        self.video = Path(video)
        if not self.video.is_file():
            raise VideoError(f"{self.video} does not exist")
        if not has_ffmpeg():
            raise VideoError("this Blender build has no FFmpeg to decode video; export the clip as numbered "
                             "PNGs into a folder and import that folder")
        self.cache_dir = Path(cache_dir)
        try:
            with self._decode_scene() as (_, strip):
                duration = strip.frame_final_duration
                element = strip.elements[0] if len(strip.elements) else None
                width, height = (element.orig_width, element.orig_height) if element else (0, 0)
                self.fps = float(strip.fps)
        except RuntimeError as e:  # not a video Blender can open
            raise VideoError(f"Blender cannot open {self.video.name} as a video ({e}); convert it to H.264 MP4 "
                             "or export numbered PNGs into a folder and import that folder") from None
        if duration <= 0 or width <= 0 or height <= 0:
            raise VideoError(f"Blender cannot decode {self.video.name} (no frames or no size); convert it to "
                             "H.264 MP4 or export numbered PNGs into a folder and import that folder")
        self.frames = list(range(1, duration + 1))
        self.size = (width, height)

    def path(self, frame: int) -> Path:
        """The frame's PNG, decoded now if the cache lacks it (written whole or not at all)."""
        return list(self.decode([frame]))[0]  # run to the end: the decode scene goes before this returns

    def decode(self, frames) -> Iterator[Path]:
        """Each frame's PNG in turn, the missing ones decoded through one scene (opening the video costs
        about a third of a 720p frame's decode, so a run of frames opens it once)."""
        frames = list(frames)
        for frame in frames:
            if not 1 <= frame <= len(self.frames):  # frames are 1..N: no search through the list
                raise VideoError(f"frame {frame} is outside {self.video.name}'s frames 1-{self.frames[-1]}")
        with ExitStack() as opened:
            decoder = None
            for frame in frames:
                path = self.cache_dir / f"{frame:04d}.png"
                if not path.is_file():
                    if decoder is None:
                        self.cache_dir.mkdir(parents=True, exist_ok=True)
                        decoder = opened.enter_context(self._decode_scene())[0]
                    self._decode_to(decoder, frame, path)
                yield path

    def _decode_to(self, scene: bpy.types.Scene, frame: int, path: Path) -> None:
        tmp = path.with_name(f".{path.stem}.tmp.png")
        scene.frame_current = frame
        scene.render.filepath = str(tmp)
        with bpy.context.temp_override(scene=scene):
            bpy.ops.render.render(write_still=True)
        if not tmp.is_file():
            raise VideoError(f"Blender did not decode frame {frame} of {self.video.name}")
        os.replace(tmp, path)

    @contextmanager
    def _decode_scene(self):
        scene = bpy.data.scenes.new(DECODE_SCENE)
        try:
            editor = scene.sequence_editor_create()
            strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # 5.0 renamed them
            strip = strips.new_movie("footage", str(self.video), channel=1, frame_start=1)
            _decode_settings(scene, strip)
            yield scene, strip
        finally:
            bpy.data.scenes.remove(scene)


def _decode_settings(scene: bpy.types.Scene, strip) -> None:
    """Render = decode: the strip's pixels as they are (Standard view, 8-bit RGB PNG, full size)."""
    render = scene.render
    if len(strip.elements):
        render.resolution_x, render.resolution_y = strip.elements[0].orig_width, strip.elements[0].orig_height
    render.resolution_percentage = 100
    render.use_sequencer = True
    render.use_compositing = False
    render.use_file_extension = False
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    settings = render.image_settings
    set_media_type(settings, "IMAGE")
    settings.file_format = "PNG"
    settings.color_mode = "RGB"
    settings.color_depth = "8"
    scene.frame_start, scene.frame_end = 1, max(1, strip.frame_final_duration)
