"""One segment through Wan-Animate: a reference character, a pose video and face crops in, frames out.

`previous` (the previous segment's last frames) conditions the segment the way the pipeline conditions its
own later segments; the pipeline itself runs one segment per call, so the shot can be resumed segment by
segment (backend/stages/video_engine.py). mode="replace" also takes the footage as background and the
performer's mask (white = replace).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import numpy as np

from backend.pipelines.video_params import VideoParams
from backend.pipelines.wan_common import memory_guard
from backend.pipelines.wan_vace import step_callback


@contextlib.contextmanager
def conditioned_on(pipe: Any, previous: np.ndarray | None):
    """While open, the pipeline's first (only) segment is conditioned on `previous` (N x H x W x 3 uint8)."""
    if previous is None:
        yield
        return
    import torch

    frames = torch.from_numpy(previous).float().div(127.5).sub(1.0).permute(3, 0, 1, 2)[None]  # (1, 3, N, H, W)
    original = pipe.prepare_prev_segment_cond_latents

    def prepare(prev_segment_cond_video, *args, start_frame=0, **kwargs):
        # start_frame > 0 marks the first frames as given (the pipeline's own test for a later segment)
        return original(frames.to(kwargs.get("device") or "cpu"), *args, start_frame=1, **kwargs)

    pipe.prepare_prev_segment_cond_latents = prepare
    try:
        yield
    finally:
        del pipe.prepare_prev_segment_cond_latents   # the class's method again


def animate_segment(pipe: Any, params: VideoParams, reference: np.ndarray, poses: list[np.ndarray],
                    faces: list[np.ndarray], previous: np.ndarray | None, latents, *,
                    background: list[np.ndarray] | None = None, masks: list[np.ndarray] | None = None,
                    on_step: Callable[[int, int], None] = lambda s, n: None,
                    is_cancelled: Callable[[], bool] = lambda: False) -> list[np.ndarray]:
    """`len(poses)` frames (HxWx3 uint8 at the poses' size)."""
    from PIL import Image

    height, width = poses[0].shape[:2]
    extra = {}
    if params.mode == "replace":
        extra = {"background_video": [Image.fromarray(b) for b in background],
                 "mask_video": [Image.fromarray(m) for m in masks]}
    overlap = params.overlap if previous is not None else 1
    with memory_guard("wan animate"), conditioned_on(pipe, previous):
        frames = pipe(
            image=Image.fromarray(reference), pose_video=[Image.fromarray(p) for p in poses],
            face_video=[Image.fromarray(f) for f in faces], prompt=params.prompt,
            negative_prompt=params.negative_prompt, height=height, width=width, segment_frame_length=len(poses),
            num_inference_steps=params.steps, mode=params.mode, prev_segment_conditioning_frames=overlap,
            guidance_scale=params.guidance, latents=latents, output_type="np",
            callback_on_step_end=step_callback(params.steps, on_step, is_cancelled),
            max_sequence_length=min(512, pipe.tokenizer.model_max_length), **extra,
        ).frames[0]
    return [np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8) for f in frames]
