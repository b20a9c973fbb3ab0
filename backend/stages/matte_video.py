"""The matte stage's `video` method: tracker and matting models loaded once, frames tracked strictly in order.

The tracker remembers earlier frames, so a frame's mask depends on every frame before it. When a
resumed job starts later in the shot, the frames before are tracked again (not written) so that its
mattes are the ones an uninterrupted run gives.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from backend.loaders.missing import ModelMissing
from backend.loaders.video_matte import load_matting, load_tracker
from backend.pipelines.video_matte import Tracker, VideoMatteParams, trimap, vitmatte_alpha
from backend.pipelines.rembg_matte import rembg_alpha
from backend.stages.base import StageContext, StageError
from backend.stages.model_source import model_source, warm


def video_matter(params: VideoMatteParams, ctx: StageContext, read: Callable[[int], np.ndarray],
                 person_finder: Callable[[], object]):
    """A function (frame, colour) -> (colour, alpha); frames must come in increasing order.

    Without video.box or video.point, the person is found on the shot's first frame by rembg (role `matte`,
    a person model by default): the box around its matte prompts the tracker.
    """
    loaders = {"tracker": load_tracker, **({"matting": load_matting} if params.refine == "vitmatte" else {})}
    loaded, missing = {}, []
    for role, load in loaders.items():   # try every role first, so one message names all that are missing
        try:
            source, local_only = model_source(ctx, role)
            loaded[role] = warm(ctx, role, (source,), lambda: load(source, local_files_only=local_only))
        except ModelMissing as e:
            missing.append(e)
    if missing:
        first = missing[0]
        more = "".join(f"; and for {e.role!r} ({e.model}): {e.how}" for e in missing[1:])
        raise ModelMissing(first.role, first.model, first.how + more,
                           detail="matte method=video needs the roles 'tracker' (SAM 2 video) and 'matting' "
                                  "(ViTMatte; or set video.refine=none).")
    model, processor = loaded["tracker"]
    matting = loaded.get("matting")
    if not params.box and not params.point:
        params = replace(params, box=person_box(person_finder(), read(ctx.frames[0])))
    tracker = Tracker(model, processor, params)
    order = {f: i for i, f in enumerate(ctx.frames)}
    done = [-1]   # index in ctx.frames of the last frame tracked

    def matte(frame: int, color: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = order[frame]
        if at <= done[0]:
            raise StageError("video matting tracks frames in order; a frame was asked for twice", code="internal")
        for skipped in ctx.frames[done[0] + 1:at]:       # catch up: the tracker must see every frame
            tracker.mask(np.ascontiguousarray(read(skipped)[..., :3]))
        rgb = np.ascontiguousarray(color[..., :3])
        mask = tracker.mask(rgb)
        done[0] = at
        if matting is None:
            return rgb, mask
        return rgb, vitmatte_alpha(*matting, rgb, trimap(mask, params.band))

    return matte


def person_box(session, first: np.ndarray) -> list[float]:
    """x0, y0, x1, y1 around the person rembg finds on the first frame, or a clear error when it finds none."""
    alpha = rembg_alpha(session, first, False)
    ys, xs = np.nonzero(alpha > 0.5)
    if len(ys) < 16:
        raise StageError("video matting found no person on the first frame: mark them with video.box=x0,y0,x1,y1 "
                         "or video.point=x,y (pixels)", code="bad_input")
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
