"""Frames of a Marigold stage in shot order, each starting from the latent the previous frame ended on.

The chain makes a frame's output depend on the frames before it, so a restarted or partial job must start
each frame from exactly the latent an uninterrupted run would: every frame's final latent is kept in the
job's scratch, and a frame whose predecessor's latent is missing recomputes the chain from the last frame
that has one (or from the first frame of the shot).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from backend.pipelines.marigold import MarigoldParams, latent_shape, predict, starting_noise
from backend.stages.base import StageContext, StageError


def _key(frame: int) -> str:
    return f"latent_{frame:04d}"


def chained_predictions(pipe: Any, params: MarigoldParams, ctx: StageContext, stage: str,
                        colour: Callable[[dict], np.ndarray] | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield (frame, prediction by target) for every frame in ctx.todo, in shot order."""
    import torch

    width, height = ctx.size
    noise = starting_noise(pipe, latent_shape(pipe, height, width, params), params.seed)
    order = {frame: i for i, frame in enumerate(ctx.frames)}

    def run(frame: int, previous):
        inputs = ctx.read_input(frame)
        if "color" not in inputs:
            raise StageError(f"the {stage} stage needs a colour layer in its source", code="bad_input", frame=frame)
        try:
            prediction, latent = predict(pipe, inputs["color"], params, noise, previous)
        except ValueError as e:
            raise StageError(f"{stage} failed on frame {frame}: {e}", code="bad_input", frame=frame) from e
        ctx.save_scratch(_key(frame), {"latent": latent.numpy()})
        return prediction, latent

    def latent_before(frame: int):
        index = order[frame]
        if index == 0 or params.steadiness == 0:
            return None
        start = index - 1
        while start >= 0 and ctx.load_scratch(_key(ctx.frames[start])) is None:
            start -= 1
        previous = None if start < 0 else torch.from_numpy(ctx.load_scratch(_key(ctx.frames[start]))["latent"])
        for missing in ctx.frames[start + 1: index]:  # rebuild the chain an uninterrupted run would have made
            ctx.check_cancelled()
            ctx.progress(missing, 0, 1, f"{stage}: catching up the chain")
            previous = run(missing, previous)[1]
        return previous

    for frame in sorted(ctx.todo, key=order.__getitem__):
        ctx.check_cancelled()
        prediction, _ = run(frame, latent_before(frame))
        ctx.progress(frame, 1, 1, stage)
        yield frame, prediction
