"""The `matte` stage: a matte per frame (chroma key or rembg), smoothed over time, grown/shrunk and feathered.

Colour out is straight (not premultiplied): despilled and unmixed at the fringe for a chroma key,
untouched for rembg. Alpha out is float in [0, 1]. With `shadow=true` (chroma key), a `shadow` layer
too: the screen's darkening under the figure, 0 = none.

The difference keyer's screen model is made once per shot, before the first frame: from the side
input `clean_plate` when key.clean_plate is set, else from up to SCREEN_SAMPLES frames spread over
the shot (so it does not depend on which frames a resumed job still has to do). With key.edge_radius 0 (the
default), the fringe's width is measured once per shot too, from the same sample frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np

from backend.identity import REMBG_PREFIX
from backend.ipc.take import Layer
from backend.loaders.matte import load_matte_session
from backend.params import ParamError, param
from backend.pipelines.chroma_key import ChromaKeyParams, chroma_key
from backend.pipelines.key_fringe_width import with_fringe_radius
from backend.pipelines.matte_refine import RefineParams, refine_alpha
from backend.pipelines.matte_temporal import smooth_alpha
from backend.pipelines.rembg_matte import RembgParams, rembg_alpha
from backend.pipelines.screen_model import ScreenModel, estimate_screen, linear_light, screen_from_plate
from backend.pipelines.screen_shadow import shadow_layer
from backend.pipelines.video_matte import VideoMatteParams
from backend.stages.matte_video import video_matter
from backend.stages.base import StageContext, StageError, register
from backend.stages.frame_window import FrameWindow
from backend.stages.model_source import model_source, warm


@dataclass
class MatteParams:
    method: str = param("chroma", choices=("chroma", "rembg", "video"),
                        help="chroma: a green/blue screen; rembg: a person per frame; video: a person tracked "
                             "through the shot (roles 'tracker' and 'matting')")
    key: ChromaKeyParams = field(default_factory=ChromaKeyParams)
    rembg: RembgParams = field(default_factory=RembgParams)
    video: VideoMatteParams = field(default_factory=VideoMatteParams)
    refine: RefineParams = field(default_factory=RefineParams)
    shadow: bool = param(False, help="chroma: also write a 'shadow' layer, the screen's darkening under the "
                                     "figure (0 = no shadow), for a shadow catcher")

    def validate(self) -> None:
        if self.shadow and (self.method != "chroma" or self.key.model != "difference"):
            raise ParamError("shadow", "the shadow layer comes from the difference keyer: use it with "
                                       "method=chroma and key.model=difference")
        if self.key.clean_plate and self.method != "chroma":
            raise ParamError("key.clean_plate", "a clean plate is for the chroma key: set method=chroma")


CLEAN_PLATE = "clean_plate"
SCREEN_SAMPLES = 8


@register
class MatteStage:
    name = "matte"
    Params = MatteParams
    summary = ("alpha matte per frame (shadow-proof chroma key with despill, rembg, or a person tracked through the "
               "shot), smoothed over time, grown/shrunk and feathered")
    version = 7  # 7: key.edge_radius 0 (default) measured per shot; 6: the shadow layer reads the clear screen only

    def model_roles(self, params: MatteParams, models) -> list[str]:
        if params.method == "video":
            roles = ["tracker"] + (["matting"] if params.video.refine == "vitmatte" else [])
            if not params.video.box and not params.video.point:   # the person found on the first frame by rembg
                roles.append("matte" if params.rembg.model == "config" else REMBG_PREFIX + params.rembg.model)
            return roles
        if params.method != "rembg":
            return []
        return ["matte"] if params.rembg.model == "config" else [REMBG_PREFIX + params.rembg.model]

    def side_inputs(self, params: MatteParams) -> dict[str, str]:
        if params.method == "chroma" and params.key.clean_plate:
            return {CLEAN_PLATE: "an image of the empty screen, same camera and light (or a folder; its first image)"}
        return {}

    def layers(self, params: MatteParams, size: tuple[int, int]) -> dict[str, Layer]:
        layers = {"color": Layer("png8"), "alpha": Layer("png16")}
        if params.shadow:
            layers["shadow"] = Layer("png16")
        return layers

    def run(self, params: MatteParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        samples = _Samples(ctx)
        screen = self._screen(params, ctx, samples)
        if params.method == "chroma":   # edge_radius 0: measured once per shot, from the same sample frames
            params = replace(params, key=with_fringe_radius(params.key, samples() if screen is not None else [], screen))
        matte_one = self._matter(params, ctx, screen)

        def raw(frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            source = _colour(ctx, frame)
            if params.method == "video":
                return (*matte_one(frame, source), source)
            return (*matte_one(source), source)

        window = FrameWindow(ctx.frames, params.refine.temporal_radius, raw)
        for frame in ctx.todo:
            ctx.check_cancelled()
            (color, alpha, source), neighbours = window.around(frame)
            if neighbours:
                alpha = smooth_alpha((source, alpha), [(n[2], n[1]) for n in neighbours],
                                     params.refine.temporal_tolerance)
            alpha = refine_alpha(alpha, params.refine)
            out = {"color": color, "alpha": alpha}
            if params.shadow and screen is not None:
                out["shadow"] = shadow_layer(linear_light(source), alpha, screen)
            elif params.shadow:
                out["shadow"] = np.zeros_like(alpha)      # no screen in the shot: no shadow on it
            ctx.progress(frame, 1, 1, "matted")
            yield frame, out

    def _screen(self, params: MatteParams, ctx: StageContext, samples: "_Samples") -> ScreenModel | None:
        """The shot's screen for the difference keyer (None for other methods, or when no screen is seen)."""
        if params.method != "chroma" or params.key.model != "difference":
            return None
        channel = int(np.argmax(params.key.key))
        size = (ctx.size[1], ctx.size[0])
        if params.key.clean_plate:
            keys = sorted(ctx.sides.get(CLEAN_PLATE, []))
            if not keys:
                raise StageError("key.clean_plate=true needs the side input 'clean_plate' (an image of the empty "
                                 "screen): give it with `dstage run --side clean_plate=IMAGE_OR_FOLDER`",
                                 code="bad_input")
            plate = ctx.read_side(CLEAN_PLATE, keys[0]).get("color")
            if plate is None:
                raise StageError("the clean plate has no colour image", code="bad_input")
            try:
                return screen_from_plate(plate, channel, size)
            except ValueError as exc:
                raise StageError(str(exc), code="bad_input") from exc
        return estimate_screen(samples(), channel)

    def _matter(self, params: MatteParams, ctx: StageContext, screen: ScreenModel | None):
        """A function colour -> (straight colour, alpha) for the chosen method (models loaded once, here)."""
        if params.method == "chroma":
            return lambda color: chroma_key(color, params.key, screen)
        if params.method == "video":
            return video_matter(params.video, ctx, lambda f: _colour(ctx, f), lambda: self._rembg(params, ctx))
        session = self._rembg(params, ctx)
        return lambda color: (np.ascontiguousarray(color[..., :3]), rembg_alpha(session, color, params.rembg.post_process))

    def _rembg(self, params: MatteParams, ctx: StageContext):
        """The rembg session of `rembg.model` (loaded once, kept warm)."""
        if params.rembg.model == "config":
            source, local_only = model_source(ctx, "matte")
        else:
            source, local_only = params.rembg.model, True
            if "/" in source or "\\" in source or source.endswith(".onnx"):
                raise StageError("rembg.model takes a rembg model name; custom .onnx files go in the model config's "
                                 "'matte' entry (set rembg.model=config)", code="bad_params")
        kind = params.rembg.custom_kind
        return warm(ctx, "matte", (source, kind),
                    lambda: load_matte_session(source, local_files_only=local_only, custom_kind=kind))


def screen_samples(frames: list[int]) -> list[int]:
    """The frames the screen model is estimated from: up to SCREEN_SAMPLES, spread over the shot."""
    step = max(1, -(-len(frames) // SCREEN_SAMPLES))
    return list(frames[::step])


class _Samples:
    """The shot's sample frames in linear light, read once when first asked for (screen model, fringe radius)."""

    def __init__(self, ctx: StageContext):
        self.ctx, self.frames = ctx, None

    def __call__(self) -> list[np.ndarray]:
        if self.frames is None:
            self.frames = [linear_light(_colour(self.ctx, f)) for f in screen_samples(self.ctx.frames)]
        return self.frames


def _colour(ctx: StageContext, frame: int) -> np.ndarray:
    inputs = ctx.read_input(frame)
    if "color" not in inputs:
        raise StageError("the matte stage needs a colour layer in its source", code="bad_input", frame=frame)
    return inputs["color"]
