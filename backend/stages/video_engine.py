"""The video engines of the propagate stage (`engine=vace|animate`): a shot generated segment by segment.

A segment (backend/pipelines/video_segments.py) is the unit of work the store resumes from: before a
segment's frames are yielded (and written), the frames the next segment is conditioned on are saved in the
job's scratch folder. A backend killed mid-shot resumes at the first segment that owns an unfinished frame,
with the same conditioning frames and the same starting noise (seeded per latent frame of the shot), so the take
comes out identical to an uninterrupted run. Only one segment's frames are held at a time.
"""

from __future__ import annotations

from typing import Any, Iterator

import cv2
import numpy as np

from backend.pipelines.footage import fit_frame
from backend.pipelines.video_controls import control_frame, fit_to
from backend.pipelines.video_loading import load_wan
from backend.pipelines.video_params import TEMPORAL_STRIDE
from backend.pipelines.video_segments import Segment, crossfade, plan_segments, shot_noise
from backend.pipelines.wan_common import place, set_vae_tiling, wan_dtype
from backend.stages.base import StageContext, StageError

REFERENCE = "reference"   # the side input of video.reference=side


class VideoEngine:
    """Runs one job of the propagate stage with a video engine; `stage` lends its keyframe machinery."""

    def __init__(self, stage: Any, params: Any, ctx: StageContext):
        self.stage, self.params, self.video, self.ctx = stage, params, params.video, ctx
        self.engine = params.engine
        width, height = ctx.size
        self.gen_size = self.video.frame_size(width, height)
        self._annotators = None
        # Wan-Animate has no kept frames; and a weightless preview grade of the footage is no style to pin or
        # to show VACE as the look (for Wan-Animate it is still the performer: a usable character image)
        preview = params.keyframes_from == "preview"
        self.pinned = self.video.pin_keyframes and self.engine == "vace" and not preview
        self.reference_from = "none" if preview and self.engine == "vace" and self.video.reference == "keyframe" \
            else self.video.reference

    # -- the shot ------------------------------------------------------------------------------------
    def run(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        ctx, video = self.ctx, self.video
        frames = list(ctx.frames)
        todo = set(ctx.todo)
        if not todo:
            return
        segments = plan_segments(len(frames), video.segment_frames, video.overlap)
        owners = [s for s in segments if any(frames[i] in todo for i in range(s.start, s.owned_end))]
        first, last = owners[0].index, owners[-1].index
        while first > 0 and self._tail(first - 1) is None:  # its conditioning frames were never saved
            first -= 1
        keys = self._keyframes()
        reference = self._reference(keys)
        pipe = self._pipeline()
        for segment in segments[first:last + 1]:
            ctx.check_cancelled()
            out = self._generate(pipe, segment, frames, keys, reference)
            if segment.owned_end < len(frames):   # the next segment's conditioning, kept before any frame is written
                stride = segment.owned_end - segment.start
                self.ctx.save_scratch(self._tail_name(segment.index), {"tail": np.stack(out[stride:stride + video.overlap])})
            tail = self._tail(segment.index - 1) if segment.index else None
            for position in range(segment.owned_end - segment.start):
                frame = frames[segment.start + position]
                if frame not in todo:
                    continue
                image = out[position]
                if tail is not None and position < segment.overlap:
                    image = crossfade(tail[position], image, position, segment.overlap)
                yield frame, self._layers(frame, image, keys)

    # -- one segment ---------------------------------------------------------------------------------
    def _generate(self, pipe, segment: Segment, frames: list[int], keys: "Keyframes",
                  reference: np.ndarray | None) -> list[np.ndarray]:
        ctx, video = self.ctx, self.video
        width, height = self.gen_size
        spatial = pipe.vae_scale_factor_spatial
        extra = int(reference is not None or self.engine == "animate")   # a reference latent frame leads
        noise = shot_noise(video.seed, segment.start // TEMPORAL_STRIDE, (segment.length - 1) // TEMPORAL_STRIDE + 1,
                           (pipe.vae.config.z_dim, height // spatial, width // spatial), extra)
        tail = self._tail(segment.index - 1) if segment.index else None
        anchor = frames[segment.start]
        shot = [self._source(frames[index]) for index in segment.frames(len(frames))]
        if self.engine == "animate":
            return self._animate(pipe, segment, shot, reference, tail, noise, anchor)
        from backend.pipelines.wan_vace import vace_segment

        controls, kept, made_of = [], {}, set()
        for position, (index, layers) in enumerate(zip(segment.frames(len(frames)), shot)):
            control, what = control_frame(layers, video.controls, self.gen_size)
            controls.append(control)
            made_of.add(what)
            key = keys.get(frames[index])
            if key is not None and self.pinned:
                kept[position] = fit_to(key, self.gen_size)
        if tail is not None:
            kept.update({position: tail[position] for position in range(segment.overlap)})
        label = f"vace segment {segment.index + 1} (control: {', '.join(sorted(made_of))})"
        return vace_segment(pipe, video, controls, kept, reference, noise,
                            on_step=lambda step, steps: ctx.progress(anchor, step, steps, label),
                            is_cancelled=ctx.is_cancelled)

    def _animate(self, pipe, segment: Segment, shot: list[dict], reference, tail, noise, anchor: int):
        from backend.pipelines.video_pose import face_crop
        from backend.pipelines.wan_animate import animate_segment

        ctx, video = self.ctx, self.video
        poses, faces, background, masks = [], [], [], []
        for layers in shot:
            pose = self._pose(layers)
            poses.append(cv2.resize(pose, self.gen_size, interpolation=cv2.INTER_NEAREST))
            faces.append(face_crop(layers["color"], pose, video.face_size))
            if video.mode == "replace":
                if "alpha" not in layers:
                    raise StageError("video.mode=replace needs the performer's alpha in the source (white = the "
                                     "performer): run the matte stage first and use its take as the input, or "
                                     "set video.mode=animate", code="bad_input", frame=anchor)
                background.append(fit_to(layers["color"], self.gen_size))
                alpha = np.clip(np.asarray(layers["alpha"], np.float32), 0, 1)
                alpha = alpha[..., 0] if alpha.ndim == 3 else alpha
                masks.append(cv2.resize(np.rint(alpha * 255).astype(np.uint8), self.gen_size))
        label = f"animate segment {segment.index + 1} ({video.mode})"
        return animate_segment(pipe, video, reference, poses, faces, tail, noise,
                               background=background or None, masks=masks or None,
                               on_step=lambda step, steps: ctx.progress(anchor, step, steps, label),
                               is_cancelled=ctx.is_cancelled)

    def _pose(self, layers: dict[str, np.ndarray]) -> np.ndarray:
        """The frame's OpenPose image: the take's pose layer, else estimated from the footage."""
        pose = layers.get("pose")
        if pose is not None:
            pose = np.repeat(pose[..., None], 3, axis=2) if pose.ndim == 2 else pose[..., :3]
            return pose if pose.dtype == np.uint8 else np.clip(np.rint(pose * 255), 0, 255).astype(np.uint8)
        if self._annotators is None:
            from backend.pipelines.diffuse_controls import Annotators

            self._annotators = Annotators(self._registry(), self.ctx.device)
        height, width = layers["color"].shape[:2]
        return self._annotators("openpose", layers["color"], width, height)

    def _tail_name(self, index: int) -> str:
        return f"{self.engine}_tail_{index:05d}"

    def _tail(self, index: int) -> np.ndarray | None:
        saved = self.ctx.load_scratch(self._tail_name(index))
        return None if saved is None else saved["tail"]

    # -- inputs --------------------------------------------------------------------------------------
    def _source(self, frame: int) -> dict[str, np.ndarray]:
        data = self.ctx.read_input(frame)
        if "color" not in data:
            raise StageError(f"frame {frame} of the source has no color", code="bad_input", frame=frame)
        return data

    def _keyframes(self) -> "Keyframes":
        """Stylised keyframes (frame -> RGB at the footage's size) when pinned or used as the reference."""
        if not self.pinned and self.reference_from != "keyframe":
            return Keyframes(self, [])
        folder = self.stage.keyframe_folder(self.params, self.ctx)
        plan = self.stage._plan(self.params, self.ctx, folder)
        self.stage._stylize_keys(self.params, self.ctx, plan, folder)
        return Keyframes(self, plan.keys if self.pinned else plan.keys[:1])

    def _reference(self, keys: "Keyframes") -> np.ndarray | None:
        if self.reference_from == "none":
            return None
        if self.reference_from == "keyframe":
            return fit_to(keys.get(keys.frames[0]), self.gen_size)
        if not self.ctx.sides.get(REFERENCE):
            raise StageError("video.reference=side needs the side input 'reference' (the character's image); give "
                             "it with `dstage run --side reference=IMAGE`", code="bad_input")
        image = self.ctx.read_side(REFERENCE, self.ctx.sides[REFERENCE][0])["color"]
        return fit_to(fit_frame(image, self.ctx.size), self.gen_size)

    def _registry(self):
        if self.ctx.models is None:
            from backend.models import load_registry

            self.ctx.models = load_registry()
        return self.ctx.models

    def _pipeline(self):
        registry = self._registry()
        dtype = wan_dtype(self.video.dtype, self.ctx.device)
        pipe = load_wan(registry, self.engine, self.video.role(self.engine), self.ctx.device, dtype, self.video.offload)
        for note in place(pipe, self.video.offload, self.ctx.device):
            self.ctx.progress(self.ctx.todo[0], 0, 1, note)
        set_vae_tiling(pipe, self.video.vae_tiling)
        return pipe

    # -- output --------------------------------------------------------------------------------------
    def _layers(self, frame: int, image: np.ndarray, keys: "Keyframes") -> dict[str, np.ndarray]:
        source = self._source(frame)
        size = source["color"].shape[1::-1]
        key = keys.get(frame) if self.pinned else None
        out = {"color": key.copy() if key is not None else fit_to(image, size)}  # a pinned keyframe comes back as given
        for name in self.params.layers:
            if name == "color":
                continue
            if name not in source:
                raise StageError(f"frame {frame}: the source has no {name} layer to carry along; give the source "
                                 f"that layer or drop it from `layers`", code="bad_input", frame=frame)
            out[name] = source[name].astype(np.float32)
        return out


class Keyframes:
    """The stylised keyframes a job uses, read from the job's scratch (or the uploaded folder) when a segment
    needs one: only the keyframes of the segment at hand are in memory, however long the shot."""

    def __init__(self, engine: VideoEngine, frames: list[int]):
        self.engine, self.frames = engine, list(frames)
        self._wanted = set(self.frames)

    def get(self, frame: int) -> np.ndarray | None:
        if frame not in self._wanted:
            return None
        engine = self.engine
        return engine.stage._keyframe(engine.params, engine.ctx, frame).layers["color"]
