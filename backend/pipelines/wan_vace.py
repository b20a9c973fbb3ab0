"""One segment through Wan VACE: a control video, kept frames and a reference image in, frames out.

Kept frames (the previous segment's last frames, pinned keyframes) go in as the video with a black mask,
every other frame as its control frame with a white mask. Pure: arrays in, arrays out; the diffusers
pipeline is handed in already loaded (backend/pipelines/video_loading.py).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from backend.errors import Cancelled
from backend.pipelines.video_params import VideoParams
from backend.pipelines.wan_common import memory_guard


def step_callback(steps: int, on_step: Callable[[int, int], None], is_cancelled: Callable[[], bool]):
    """A diffusers `callback_on_step_end` that reports progress and stops between steps on cancel."""

    def callback(pipe, step, timestep, tensors):
        on_step(step + 1, steps)
        if is_cancelled():
            raise Cancelled()
        return tensors

    return callback


def vace_segment(pipe: Any, params: VideoParams, controls: list[np.ndarray], kept: dict[int, np.ndarray],
                 reference: np.ndarray | None, latents, *, on_step: Callable[[int, int], None] = lambda s, n: None,
                 is_cancelled: Callable[[], bool] = lambda: False) -> list[np.ndarray]:
    """`len(controls)` frames (HxWx3 uint8, the controls' size); `kept` maps positions to images to keep;
    `latents` is the starting noise (backend/pipelines/video_segments.py: shot_noise), reference frame first."""
    from PIL import Image

    height, width = controls[0].shape[:2]
    video, mask = [], []
    for position, control in enumerate(controls):
        keep = kept.get(position)
        video.append(Image.fromarray(control if keep is None else keep))
        mask.append(Image.new("L", (width, height), 255 if keep is None else 0))
    refs = None if reference is None else [Image.fromarray(reference)]
    with memory_guard("wan vace"):
        frames = pipe(
            prompt=params.prompt, negative_prompt=params.negative_prompt, video=video, mask=mask,
            reference_images=refs, conditioning_scale=params.conditioning_scale, height=height, width=width,
            num_frames=len(controls), num_inference_steps=params.steps, guidance_scale=params.guidance,
            latents=latents, output_type="np",
            callback_on_step_end=step_callback(params.steps, on_step, is_cancelled),
            max_sequence_length=min(512, pipe.tokenizer.model_max_length),
        ).frames[0]
    return [np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8) for f in frames]
