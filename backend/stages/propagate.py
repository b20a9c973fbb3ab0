"""The `propagate` stage: source footage + stylized keyframes -> a steady take (color, alpha, depth).

Keyframes come from one of
    diffuse  ControlNet diffusion of the keyframe grids (the `diffuse` parameters: prompt, checkpoint,
             ControlNet units ...), one pass per grid so keyframes share a style; the stability dial
             diffuses the in-between frames one by one;
    folder   the artist's own stylized keyframes, the side input `keyframes`: the client uploads a folder of
             numbered images (0012.png ..., or in its `color/` subfolder, with optional `alpha/` and `depth/`
             subfolders beside it) into the store, like frames (`dstage run --side keyframes=DIR`);
    preview  PREVIEW ONLY: a pixel-wise colour grade (backend/pipelines/preview.py) applied through the
             keyframe grids, so the whole chain runs without model weights. It is not diffusion.
All three go through the same grid path: `stylize_keyframes(keys, read_key, stylizer, ...)` with
`stylizer(grid_image, control_maps) -> stylized_grid`.

Streaming: the keyframe plan and every stylized keyframe are kept in the job's scratch folder (a restart
recomputes neither); frames are then rebuilt in order, holding only the two bracketing keyframes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np

from backend.ipc.take import Layer
from backend.params import ParamError, param
from backend.pipelines.flow import DIS_PRESETS
from backend.pipelines.diffuse import DiffuseParams, DiffusePipeline, model_roles
from backend.pipelines.footage import fit_frame
from backend.pipelines.grid_diffusion import control_maps_for, diffusion_stylizer
from backend.pipelines.grid import GridParams, GridReport, stylize_keyframes
from backend.pipelines.keyframes import KeyframeParams, KeyframePlan, plan_keyframes
from backend.pipelines.preview import preview_grade, preview_stylizer
from backend.pipelines.propagate import Keyframe, PropagateParams, Propagator
from backend.pipelines.stability import mix_stability
from backend.pipelines.video_params import ENGINES, VideoParams
from backend.read_ahead import read_ahead
from backend.stages.base import StageContext, StageError, flow_layers, register
from backend.stages.gap_ahead import GapsAhead
from backend.stages.video_engine import REFERENCE, VideoEngine

log = logging.getLogger(__name__)
LAYERS = ("color", "alpha", "depth")
KEYFRAMES = "keyframes"   # the side input of keyframes_from=folder


@dataclass
class PropagateStageParams:
    engine: str = param("keyframes", choices=list(ENGINES),
                        help="keyframes: stylised keyframes propagated by optical flow (low memory, CPU preview); "
                             "vace: Wan VACE restyles the footage keeping its structure (depth, pose, line art); "
                             "animate: Wan-Animate makes a reference character perform the footage")
    video: VideoParams = field(default_factory=VideoParams)
    keyframes_from: str = param("preview", choices=["diffuse", "folder", "preview"],
                                help="diffuse: ControlNet diffusion of keyframe grids; folder: the artist's "
                                     "stylized keyframes, uploaded as the side input `--side keyframes=DIR`; "
                                     "preview: a weightless colour grade")
    diffuse: DiffuseParams = field(default_factory=DiffuseParams)
    preview_levels: int = param(0, min=0, max=64, help="preview only: posterize to this many levels (0 = off)")
    layers: list[str] = param(["color"], choices=list(LAYERS), help="layers to write; alpha and depth ride along")
    depth_near: float = param(0.0, help="depth value stored as 0 in the 16-bit depth layer")
    depth_far: float = param(1.0, help="depth value stored as 65535 in the 16-bit depth layer")
    key_mode: str = param("uniform", choices=["uniform", "adaptive"], help="keyframe spacing")
    key_interval: int = param(12, min=1, max=1000, help="uniform: frames between keyframes")
    key_min_interval: int = param(4, min=1, max=1000, help="adaptive: fewest frames between keyframes")
    key_max_interval: int = param(24, min=1, max=1000, help="adaptive: most frames between keyframes")
    motion_threshold: float = param(0.04, min=0.001, max=1.0, help="adaptive: motion (fraction of width) per key")
    detect_cuts: bool = param(True, help="split at scene cuts")
    cut_threshold: float = param(0.5, min=0.05, max=1.0, help="histogram distance that counts as a cut")
    cut_residual: float = param(20.0, min=0.0, max=255.0,
                                help="grey levels left after warping the previous frame onto a frame that count "
                                     "as a cut (0 = histogram only)")
    keyframes: list[int] = param([], help="keyframes chosen by hand (frame numbers); overrides key_mode")
    grid_max_side: int = param(1920, min=64, max=8192, help="largest side of a keyframe grid")
    grid_max_tiles: int = param(6, min=1, max=64, help="keyframes per grid")
    colour_match: str = param("mkl", choices=["mkl", "meanstd", "none"], help="colour transfer between grids")
    blend: str = param("guided", choices=["guided", "confidence", "warp_crossfade", "crossfade"],
                       help="guided: keyframes' colour models applied to each frame, style residual chosen per "
                            "region (default); confidence: warped colour blended; the others are baselines")
    flow_preset: str = param("balanced", choices=list(DIS_PRESETS), help="DIS optical flow preset")
    flow_scale: float = param(1.0, min=0.25, max=1.0, help="estimate flow at this fraction of the frame size")
    ink: str = param("edges", choices=["edges", "carried"],
                     help="guided: edges: a keyframe's ink lines are redrawn on each frame's own edges where they "
                          "follow its source's edges; carried: always carried along the flow as drawn")
    stability: float = param(0.0, min=0.0, max=1.0,
                             help="0 = fully propagated (steady), 1 = every frame stylized on its own")

    def validate(self) -> None:
        if self.engine == "animate" and self.video.overlap not in (1, 5):
            raise ParamError("video.overlap", f"{self.video.overlap}: Wan-Animate conditions a segment on 1 or 5 "
                                              f"frames of the previous one; use 1 or 5")
        if self.engine == "animate" and self.video.reference == "none":
            raise ParamError("video.reference", "animate needs the character's image: keyframe (a stylised "
                                                "keyframe) or side (`--side reference=IMAGE`)")
        if "color" not in self.layers:
            raise ParamError("layers", "must include color")
        if self.depth_far <= self.depth_near:
            raise ParamError("depth_far", f"{self.depth_far} must be above depth_near {self.depth_near}")

    def keyframe_params(self, user_keys: list[int]) -> KeyframeParams:
        return KeyframeParams(mode=self.key_mode, interval=self.key_interval, min_interval=self.key_min_interval,
                              max_interval=self.key_max_interval, motion_threshold=self.motion_threshold,
                              detect_cuts=self.detect_cuts, cut_threshold=self.cut_threshold,
                              cut_residual=self.cut_residual, keyframes=user_keys)


class KeyframeImages:
    """The artist's stylized keyframes, uploaded as the side input `keyframes`: color, optional alpha and depth."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.frames = sorted(ctx.sides.get(KEYFRAMES, []))
        if not self.frames:
            raise StageError("keyframes_from=folder needs the side input 'keyframes' (the stylized keyframes); "
                             "give it with `dstage run --side keyframes=DIR`", code="bad_input")

    def read(self, frame: int, size: tuple[int, int]) -> dict[str, np.ndarray] | None:
        if frame not in self.frames:
            return None
        images = self.ctx.read_side(KEYFRAMES, frame)
        out = {"color": fit_frame(images["color"], size)}
        for name in ("alpha", "depth"):
            image = images.get(name)
            if image is not None:
                image = image[..., 0] if image.ndim == 3 else image
                out[name] = cv2.resize(image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else
                                       65535.0 if image.dtype == np.uint16 else 1.0), size)
        return out


@register
class PropagateStage:
    name = "propagate"
    Params = PropagateStageParams
    summary = "rebuild every frame from stylized keyframes by optical flow (steady, occlusion-aware)"
    version = 20  # 2: guided synthesis by default; 3: engines (vace, animate); 4: guided in planes, cut jumps;
    # 5: vace pins no preview-graded keyframe; 6: ink the colour model cannot explain carried as it is (nearest);
    # 7: a region changes sides only when the other is 3x more trusted (was 1.5); 8: ink redrawn on each frame's edges;
    # 9: where the flow is unsure, a by-colour model of the keyframes (was their global colour fit)
    # 10: carried (loosely edge-following) ink kept where both keyframes carry it; redrawn where no flow vouches
    # 11: each side's flow taken per pixel from the direct estimate or the gap's chained one, whichever matches better
    # 12: carried (loose) ink redrawn by colour pair (ink_pairs) where no side is sure; ghosts of carried lines left out
    # 13: the occlusion check judges the direct flow, not the chosen one
    # 14: ink pairs also ordered (a pixel's own colour and the one across the edge): lines astride a silhouette
    # 15: a gap's keyframes carry their ink alike when one's lines follow its edges only loosely
    # 16: ink pairs also counted as they look in shadow (ink_pairs.SHADE): a figure in a cast shadow keeps its outline
    # 17: the two keyframes' ink pairs pooled by pixel counts, not averaged
    # 17: a keyframe's residual carried at full strength only where it is detail; its fit noise weighed by confidence
    # 18: both 17s together (two engineers each numbered their change 17: a store holding either must not serve it)
    # 19: the two keyframes' by-colour models fitted from their pooled pixels, not averaged
    # 20: the by-colour model weighed by how well its bin reproduces the keyframes (0.1 to 0.5, was 0.1)

    def _uses_keyframes(self, params: PropagateStageParams) -> bool:
        video = params.video
        if params.engine == "keyframes":
            return True
        if params.keyframes_from == "preview":   # a preview grade is neither pinned nor VACE's reference
            return params.engine == "animate" and video.reference == "keyframe"
        return video.pin_keyframes and params.engine == "vace" or video.reference == "keyframe"

    def model_roles(self, params: PropagateStageParams, models) -> list[str]:
        roles = [] if params.engine == "keyframes" else [params.video.role(params.engine)]
        if params.engine == "animate":
            roles.append("annotators")   # the pose of footage without a pose layer (OpenPose)
        if params.keyframes_from == "diffuse" and self._uses_keyframes(params):
            roles += model_roles(models, params.diffuse)
        return roles

    def side_inputs(self, params: PropagateStageParams) -> dict[str, str]:
        sides = {}
        if params.keyframes_from == "folder" and self._uses_keyframes(params):
            sides[KEYFRAMES] = "the stylized keyframes: numbered images (color/, optional alpha/ and depth/)"
        if params.engine != "keyframes" and params.video.reference == "side":
            sides[REFERENCE] = "the character's reference image (one image)"
        return sides

    def keyframe_folder(self, params: PropagateStageParams, ctx: StageContext) -> KeyframeImages | None:
        return KeyframeImages(ctx) if params.keyframes_from == "folder" else None

    def layers(self, params: PropagateStageParams, size: tuple[int, int]) -> dict[str, Layer]:
        return flow_layers(params.layers, params.depth_near, params.depth_far)

    def run(self, params: PropagateStageParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        if params.engine != "keyframes":
            yield from VideoEngine(self, params, ctx).run()
            return
        folder = KeyframeImages(ctx) if params.keyframes_from == "folder" else None
        plan = self._plan(params, ctx, folder)
        for warning in plan.warnings():  # on the command line (stderr) and in the job's progress
            log.warning(warning)
            ctx.progress(plan.segments[0][0], 0, len(ctx.todo), f"warning: {warning}")
        self._stylize_keys(params, ctx, plan, folder)
        propagator = Propagator(PropagateParams(blend=params.blend, flow_preset=params.flow_preset,
                                                flow_scale=params.flow_scale, ink=params.ink))
        todo = sorted(ctx.todo)
        gaps = list(dict.fromkeys(b for b in map(plan.bracket, todo) if None not in b and b[0] != b[1]))
        with GapsAhead(ctx, propagator, gaps, lambda k: self._keyframe(params, ctx, k),
                       lambda f: self._source(ctx, f)) as ahead:
            yield from self._frames(params, ctx, folder, plan, propagator, ahead, todo)

    def _frames(self, params, ctx: StageContext, folder: KeyframeImages | None, plan: KeyframePlan,
                propagator: Propagator, ahead: GapsAhead, todo: list[int]
                ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """The frames in order, each gap's flows prepared (`ahead`) before its frames."""
        keys: dict[int, Keyframe] = {}
        gap = None
        last = None  # the last frame the propagator saw: its flows warm-start the next frame's
        for index, t in enumerate(todo):
            ctx.check_cancelled()
            prev, nxt = plan.bracket(t)
            wanted = {k for k in (prev, nxt) if k is not None}
            keys = {k: v for k, v in keys.items() if k in wanted}  # at most the two bracketing keyframes
            for k in wanted - set(keys):
                keys[k] = self._keyframe(params, ctx, k)
            if prev is not None and nxt is not None and prev != nxt and (prev, nxt) != gap:
                gap = (prev, nxt)
                ahead.enter(keys[prev], keys[nxt])
            # Resuming mid-gap: replay the gap's earlier frames (output discarded) so every flow starts
            # from the same warm guess as in an uninterrupted run, and the take comes out identical.
            since = last if last is not None and prev is not None and last >= prev else prev
            for f in ([] if since is None else [f for f in ctx.frames if since < f < t]):
                propagator.frame(f, self._source(ctx, f)["color"], keys.get(prev), keys.get(nxt))
            last = t
            source = self._source(ctx, t)
            layers = propagator.frame(t, source["color"], keys.get(prev), keys.get(nxt))
            per_frame = self._per_frame(params, ctx, folder, t, source) if params.stability > 0 else None
            layers = mix_stability(layers, per_frame, params.stability)
            missing = [name for name in params.layers if name not in layers]
            if missing:
                raise StageError(
                    f"frame {t}: the keyframes carry no {', '.join(missing)} layer; give the source (or the keyframes "
                    f"folder's alpha/ and depth/) those layers, or drop them from `layers`", code="bad_input", frame=t)
            ctx.progress(t, index + 1, len(todo), "propagating")
            yield t, {name: layers[name] for name in params.layers}

    # -- steps ---------------------------------------------------------------------------------------

    def _source(self, ctx: StageContext, frame: int) -> dict[str, np.ndarray]:
        data = ctx.read_input(frame)
        if "color" not in data:
            raise StageError(f"frame {frame} of the source has no color", code="bad_input", frame=frame)
        return data

    def _plan(self, params, ctx: StageContext, folder: KeyframeImages | None) -> KeyframePlan:
        saved = ctx.load_scratch("plan")
        if saved is not None:
            return KeyframePlan([int(k) for k in saved["keys"]], [tuple(map(int, s)) for s in saved["segments"]])
        user = list(params.keyframes) or (folder.frames if folder is not None else [])
        if folder is not None:
            absent = [k for k in user if k not in folder.frames]
            if absent:
                raise StageError(f"keyframes {absent} have no image among the uploaded keyframes", code="bad_input")
        # Each frame is read from the store (a thread ahead) while the one before is analysed.
        frames = ((f, data["color"]) for f, data in read_ahead(ctx.frames, lambda f: self._source(ctx, f)))
        try:
            plan = plan_keyframes(frames, params.keyframe_params(user))
        except ParamError as e:
            raise StageError(str(e), code="bad_params") from e
        ctx.save_scratch("plan", {"keys": np.array(plan.keys), "segments": np.array(plan.segments).reshape(-1, 2)})
        return plan

    def _stylize_keys(self, params, ctx: StageContext, plan: KeyframePlan, folder: KeyframeImages | None) -> None:
        if folder is not None:
            return  # the artist's keyframes are read as they are needed
        stylizer = self._stylizer(params, ctx)
        grid = GridParams(params.grid_max_side, params.grid_max_tiles, 8, params.colour_match)
        report = GridReport()

        def read_key(frame):
            data = self._source(ctx, frame)
            return data["color"], {k: v for k, v in data.items() if k != "color"}

        def done(frame):
            saved = ctx.load_scratch(f"key_{frame:06d}")
            return None if saved is None else saved["color"]

        for count, (frame, image) in enumerate(stylize_keyframes(plan.keys, read_key, stylizer, grid, report, done)):
            ctx.check_cancelled()
            ctx.save_scratch(f"key_{frame:06d}", {"color": image})
            ctx.progress(frame, count + 1, len(plan.keys), f"keyframe stylized ({stylizer.label})")
        if report.frames:
            before = ", ".join(f"{d:.1f}" for d in report.delta_e_before)
            after = ", ".join(f"{d:.1f}" for d in report.delta_e_after)
            ctx.progress(plan.keys[-1], len(plan.keys), len(plan.keys),
                         f"colour difference between grids (mean delta E): before {before}; after {after}")

    def _stylizer(self, params, ctx: StageContext):
        if params.keyframes_from != "diffuse":
            return preview_stylizer(params.preview_levels)
        last = ctx.todo[0] if ctx.todo else 0
        return diffusion_stylizer(self._diffusion(ctx), params.diffuse, is_cancelled=ctx.is_cancelled,
                                  on_step=lambda step, total: ctx.progress(last, step, total, "diffusing a grid"))

    def _diffusion(self, ctx: StageContext) -> DiffusePipeline:
        registry = ctx.models
        if registry is None:
            from backend.models import load_registry

            registry = load_registry()
        return DiffusePipeline(registry, device=ctx.device)

    def _keyframe(self, params, ctx: StageContext, frame: int) -> Keyframe:
        source = self._source(ctx, frame)
        size = source["color"].shape[1::-1]
        if params.keyframes_from == "folder":
            layers = KeyframeImages(ctx).read(frame, size)
        else:
            saved = ctx.load_scratch(f"key_{frame:06d}")
            if saved is None:
                raise StageError(f"keyframe {frame} was not stylized", frame=frame)
            layers = {"color": saved["color"]}
        for name in ("alpha", "depth"):  # ride along: the keyframe's own, else the source's at that frame
            if name in params.layers and name not in layers and name in source:
                layers[name] = source[name].astype(np.float32)
        return Keyframe(frame, source["color"], layers)

    def _per_frame(self, params, ctx, folder: KeyframeImages | None, t: int, source) -> dict[str, np.ndarray]:
        if params.keyframes_from == "diffuse":
            layers = {k: v for k, v in source.items() if k != "color"}
            image = self._diffusion(ctx)(params.diffuse, image=source["color"],
                                         maps=control_maps_for(params.diffuse, layers),
                                         is_cancelled=ctx.is_cancelled).image
            out = {"color": fit_frame(image, source["color"].shape[1::-1])}
        elif folder is None:
            out = {"color": preview_grade(source["color"], params.preview_levels)}
        else:
            out = folder.read(t, source["color"].shape[1::-1])
            if out is None:
                raise StageError(
                    f"stability {params.stability} mixes in every frame stylized on its own, but frame {t} has no "
                    f"stylized image among the keyframes; set stability to 0 or add every frame", code="bad_input",
                    frame=t)
        for name in ("alpha", "depth"):
            if name in source and name not in out:
                out[name] = source[name].astype(np.float32)
        return out
