"""The `depth` stage: depth per frame from a transformers model, with one steady mapping for the shot."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from backend.ipc.take import Layer
from backend.loaders.depth import load_depth_model
from backend.pipelines.depth import DepthModel, predict_depth
from backend.pipelines.depth_fit import DepthFit, DepthParams, FitAccumulator, next_running_fit
from backend.stages.base import StageContext, StageError, register
from backend.stages.model_source import model_source, warm

SHOT_FIT = "depth_fit"


def sample_frames(frames: list[int], count: int) -> list[int]:
    """`count` frames spread evenly over the shot, first and last included."""
    if len(frames) <= count:
        return list(frames)
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [frames[i] for i in sorted(set(picks.tolist()))]


@register
class DepthStage:
    name = "depth"
    Params = DepthParams
    summary = "depth per frame (Depth Anything V2, ZoeDepth, DPT), steady over the shot, optionally fitted to the Z pass"
    version = 1

    def model_roles(self, params: DepthParams, models) -> list[str]:
        return ["depth"]

    def layers(self, params: DepthParams, size: tuple[int, int]) -> dict[str, Layer]:
        if params.output == "relative":
            return {"depth": Layer("png16", near=0.0, far=1.0, units="relative")}
        return {"depth": Layer("png16", near=params.near, far=params.far, units="m")}

    def run(self, params: DepthParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        source, local_only = model_source(ctx, "depth")
        model = warm(ctx, "depth", (source, ctx.device),
                     lambda: load_depth_model(source, local_files_only=local_only, device=ctx.device))
        shot_fit = self._shot_fit(params, ctx, model)
        for frame in ctx.todo:
            ctx.check_cancelled()
            raw, reference = self._predict(params, ctx, model, frame)
            fit = shot_fit
            if params.fit == "running":
                fit = self._running_fit(params, ctx, model, frame, raw, reference, shot_fit)
            ctx.progress(frame, 1, 1, "depth")
            yield frame, {"depth": fit.apply(raw, params)}

    def _predict(self, params, ctx, model: DepthModel, frame: int) -> tuple[np.ndarray, np.ndarray | None]:
        inputs = ctx.read_input(frame)
        if "color" not in inputs:
            raise StageError("the depth stage needs a colour layer in its source", code="bad_input", frame=frame)
        reference = inputs.get("depth")
        if params.align == "reference" and reference is None:
            raise StageError(
                f"align=reference needs a depth layer (Blender's Z pass, metres) in the source, frame {frame} has none; "
                "render the scene with its depth pass or set align=none",
                code="bad_input", frame=frame,
            )
        return predict_depth(model, inputs["color"], params.resolution), reference

    def _fit(self, params, model: DepthModel, pairs) -> DepthFit:
        acc = FitAccumulator(model.kind, params)
        for raw, reference in pairs:
            acc.add(raw, reference)
        try:
            return acc.result()
        except ValueError as e:
            raise StageError(f"depth fit failed with model {model.name}: {e}", code="bad_input") from e

    def _shot_fit(self, params, ctx, model: DepthModel) -> DepthFit:
        """One mapping for the whole shot, kept in scratch so a restarted job maps frames identically."""
        saved = ctx.load_scratch(SHOT_FIT)
        if saved is not None:
            return DepthFit.from_arrays(saved)
        frames = sample_frames(ctx.frames, params.fit_frames)
        fit = self._fit(params, model, (self._predict(params, ctx, model, f) for f in frames))
        ctx.save_scratch(SHOT_FIT, fit.to_arrays())
        return fit

    def _running_fit(self, params, ctx, model, frame, raw, reference, shot_fit: DepthFit) -> DepthFit:
        """This frame's own fit, smoothed with the previous frame's (saved per frame, so restarts agree)."""
        index = ctx.frames.index(frame)
        previous = ctx.load_scratch(f"{SHOT_FIT}_{ctx.frames[index - 1]:04d}") if index > 0 else None
        prior = DepthFit.from_arrays(previous) if previous is not None else shot_fit
        try:
            fit = next_running_fit(prior, model.kind, params, raw, reference)
        except ValueError as e:
            raise StageError(f"depth fit failed on frame {frame} with model {model.name}: {e}", code="bad_input", frame=frame) from e
        ctx.save_scratch(f"{SHOT_FIT}_{frame:04d}", fit.to_arrays())
        return fit
