"""The `diffuse` stage: ControlNet diffusion of every frame of a source, streamed frame by frame.

Inputs: the source's `color`, plus whatever control layers it brings (a take rendered by the add-on may
carry depth, normal, lineart, pose, segmentation ...): a control unit whose layer is present uses that
exact render; the others are computed by annotators from the colour. Output: the `color` layer.

Each frame's seed depends only on the job's seed and the frame number, never on the order frames are
computed in, so a resumed job writes the same pixels an uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2

from backend.ipc.take import Layer
from backend.params import ParamError, param
from backend.pipelines.diffuse import DiffuseParams, DiffusePipeline, model_roles
from backend.pipelines.diffuse_controls import CONTROL_LAYERS, ControlMapError
from backend.stages.base import StageContext, StageError, register


@dataclass
class DiffuseStageParams(DiffuseParams):
    frame_seeds: str = param("fixed", choices=("fixed", "per_frame"),
                             help="fixed: every frame uses the seed (steadier); per_frame: a seed derived per frame")
    keep_size: bool = param(True, help="scale the result back to the source size when the model needed rounding")


def frame_seed(seed: int, frame: int, mode: str) -> int:
    """The seed of one frame: the job's seed, or a hash of (seed, frame) that any process recomputes alike."""
    if mode == "fixed":
        return seed
    digest = hashlib.sha256(f"diffuse:{seed}:{frame}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@register
class DiffuseStage:
    name = "diffuse"
    Params = DiffuseStageParams
    summary = "ControlNet diffusion per frame (SD 1.x/2.x, SDXL; txt2img or img2img; LoRAs; A1111 samplers)"
    version = 1

    def model_roles(self, params: DiffuseStageParams, models) -> list[str]:
        return model_roles(models, params)

    def layers(self, params: DiffuseStageParams, size: tuple[int, int]) -> dict[str, Layer]:
        return {"color": Layer("png8")}

    def run(self, params: DiffuseStageParams, ctx: StageContext):
        registry = ctx.models
        if registry is None:
            from backend.models import load_registry

            registry = load_registry()
        pipeline = DiffusePipeline(registry, device=ctx.device)
        wanted = {c.type for c in params.controls}
        told = False
        for frame in ctx.todo:
            ctx.check_cancelled()
            inputs = ctx.read_input(frame)
            if "color" not in inputs:
                raise StageError(f"frame {frame}: the source has no colour layer", code="bad_input", frame=frame)
            maps = {t: inputs[layer] for t, layer in CONTROL_LAYERS.items() if t in wanted and layer in inputs}
            try:
                out = pipeline(
                    params, image=inputs["color"], maps=maps, seed=frame_seed(params.seed, frame, params.frame_seeds),
                    on_step=lambda step, total, f=frame: ctx.progress(f, step, total, "diffuse"),
                    is_cancelled=ctx.is_cancelled,
                )
            except (ParamError, ControlMapError) as e:
                raise StageError(f"frame {frame}: {e}", code="bad_params", frame=frame) from None
            if out.notes and not told:
                ctx.progress(frame, 0, out.steps_run, "; ".join(out.notes))
                told = True
            image = out.image
            width, height = ctx.size
            if params.keep_size and (image.shape[1], image.shape[0]) != (width, height):
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LANCZOS4)
            yield frame, {"color": image}
