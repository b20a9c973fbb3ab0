"""The `propagate` stage: source footage + stylized keyframes -> a steady take (color, alpha, depth).

Keyframes come from one of
    folder   the artist's own stylized keyframes: numbered images (0012.png ...) in `keyframes_folder`,
             or in its `color/` subfolder, with optional `alpha/` and `depth/` subfolders beside it;
    preview  PREVIEW ONLY: a pixel-wise colour grade (backend/pipelines/preview.py) applied through the
             keyframe grids, so the whole chain runs without model weights. It is not diffusion.
A diffusion stylizer plugs into the same grid path: `stylize_keyframes(keys, read_key, stylizer, ...)`
with `stylizer(grid_image, control_maps) -> stylized_grid`.

Streaming: the keyframe plan and every stylized keyframe are kept in the job's scratch folder (a restart
recomputes neither); frames are then rebuilt in order, holding only the two bracketing keyframes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from backend.imageio import numbered_images, read_image
from backend.ipc.take import Layer
from backend.params import ParamError, param
from backend.pipelines.flow import DIS_PRESETS
from backend.pipelines.footage import fit_frame
from backend.pipelines.grid import GridParams, GridReport, stylize_keyframes
from backend.pipelines.keyframes import KeyframeParams, KeyframePlan, plan_keyframes
from backend.pipelines.preview import preview_grade, preview_stylizer
from backend.pipelines.propagate import Keyframe, PropagateParams, Propagator
from backend.pipelines.stability import mix_stability
from backend.stages.base import StageContext, StageError, register

LAYERS = ("color", "alpha", "depth")


@dataclass
class PropagateStageParams:
    keyframes_from: str = param("preview", choices=["folder", "preview"],
                                help="folder: the artist's stylized keyframes; preview: a weightless colour grade")
    keyframes_folder: str = param("", help="folder of numbered stylized keyframes (for keyframes_from=folder)")
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
    keyframes: list[int] = param([], help="keyframes chosen by hand (frame numbers); overrides key_mode")
    grid_max_side: int = param(1920, min=64, max=8192, help="largest side of a keyframe grid")
    grid_max_tiles: int = param(6, min=1, max=64, help="keyframes per grid")
    colour_match: str = param("mkl", choices=["mkl", "meanstd", "none"], help="colour transfer between grids")
    blend: str = param("confidence", choices=["confidence", "warp_crossfade", "crossfade"],
                       help="confidence: occlusion-aware (default); the others are baselines")
    flow_preset: str = param("balanced", choices=list(DIS_PRESETS), help="DIS optical flow preset")
    flow_scale: float = param(1.0, min=0.25, max=1.0, help="estimate flow at this fraction of the frame size")
    stability: float = param(0.0, min=0.0, max=1.0,
                             help="0 = fully propagated (steady), 1 = every frame stylized on its own")

    def validate(self) -> None:
        if "color" not in self.layers:
            raise ParamError("layers", "must include color")
        if self.keyframes_from == "folder" and not self.keyframes_folder:
            raise ParamError("keyframes_folder", "keyframes_from=folder needs the folder of stylized keyframes")
        if self.depth_far <= self.depth_near:
            raise ParamError("depth_far", f"{self.depth_far} must be above depth_near {self.depth_near}")

    def keyframe_params(self, user_keys: list[int]) -> KeyframeParams:
        return KeyframeParams(self.key_mode, self.key_interval, self.key_min_interval, self.key_max_interval,
                              self.motion_threshold, self.detect_cuts, self.cut_threshold, user_keys)


class KeyframeFolder:
    """The artist's stylized keyframes: color (the folder or its color/), optional alpha/ and depth/."""

    def __init__(self, root: str):
        self.root = Path(root)
        if not self.root.is_dir():
            raise StageError(f"keyframes folder {self.root} does not exist", code="bad_input")
        color_dir = self.root / "color" if (self.root / "color").is_dir() else self.root
        self.files = {name: dict(numbered_images(folder)) for name, folder in
                      (("color", color_dir), ("alpha", self.root / "alpha"), ("depth", self.root / "depth"))
                      if folder.is_dir()}
        if not self.files.get("color"):
            raise StageError(f"{color_dir} holds no numbered images (e.g. 0012.png)", code="bad_input")

    @property
    def frames(self) -> list[int]:
        return sorted(self.files["color"])

    def read(self, frame: int, size: tuple[int, int]) -> dict[str, np.ndarray] | None:
        if frame not in self.files["color"]:
            return None
        out = {"color": fit_frame(read_image(self.files["color"][frame]), size)}
        for name in ("alpha", "depth"):
            path = self.files.get(name, {}).get(frame)
            if path is not None:
                image = read_image(path)
                image = image[..., 0] if image.ndim == 3 else image
                out[name] = cv2.resize(image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else
                                       65535.0 if image.dtype == np.uint16 else 1.0), size)
        return out


@register
class PropagateStage:
    name = "propagate"
    Params = PropagateStageParams
    summary = "rebuild every frame from stylized keyframes by optical flow (steady, occlusion-aware)"

    def layers(self, params: PropagateStageParams, size: tuple[int, int]) -> dict[str, Layer]:
        out = {"color": Layer("png8")}
        if "alpha" in params.layers:
            out["alpha"] = Layer("png8")
        if "depth" in params.layers:
            out["depth"] = Layer("png16", near=params.depth_near, far=params.depth_far)
        return out

    def run(self, params: PropagateStageParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        folder = KeyframeFolder(params.keyframes_folder) if params.keyframes_from == "folder" else None
        plan = self._plan(params, ctx, folder)
        self._stylize_keys(params, ctx, plan, folder)
        propagator = Propagator(PropagateParams(blend=params.blend, flow_preset=params.flow_preset,
                                                flow_scale=params.flow_scale))
        keys: dict[int, Keyframe] = {}
        todo = sorted(ctx.todo)
        for index, t in enumerate(todo):
            ctx.check_cancelled()
            prev, nxt = plan.bracket(t)
            wanted = {k for k in (prev, nxt) if k is not None}
            keys = {k: v for k, v in keys.items() if k in wanted}  # at most the two bracketing keyframes
            for k in wanted - set(keys):
                keys[k] = self._keyframe(params, ctx, k)
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

    def _plan(self, params, ctx: StageContext, folder: KeyframeFolder | None) -> KeyframePlan:
        saved = ctx.load_scratch("plan")
        if saved is not None:
            return KeyframePlan([int(k) for k in saved["keys"]], [tuple(map(int, s)) for s in saved["segments"]])
        user = list(params.keyframes) or (folder.frames if folder is not None else [])
        if folder is not None:
            absent = [k for k in user if k not in folder.files["color"]]
            if absent:
                raise StageError(f"keyframes {absent} have no image in {params.keyframes_folder}", code="bad_input")
        frames = ((f, self._source(ctx, f)["color"]) for f in ctx.frames)
        try:
            plan = plan_keyframes(frames, params.keyframe_params(user))
        except ParamError as e:
            raise StageError(str(e), code="bad_params") from e
        ctx.save_scratch("plan", {"keys": np.array(plan.keys), "segments": np.array(plan.segments).reshape(-1, 2)})
        return plan

    def _stylize_keys(self, params, ctx: StageContext, plan: KeyframePlan, folder: KeyframeFolder | None) -> None:
        if folder is not None:
            return  # the artist's keyframes are read as they are needed
        stylizer = preview_stylizer(params.preview_levels)
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
            ctx.progress(plan.keys[-1], len(plan.keys), len(plan.keys),
                         f"grid colour difference (delta E) before {report.delta_e_before}, after {report.delta_e_after}")

    def _keyframe(self, params, ctx: StageContext, frame: int) -> Keyframe:
        source = self._source(ctx, frame)
        size = source["color"].shape[1::-1]
        if params.keyframes_from == "folder":
            layers = KeyframeFolder(params.keyframes_folder).read(frame, size)
        else:
            saved = ctx.load_scratch(f"key_{frame:06d}")
            if saved is None:
                raise StageError(f"keyframe {frame} was not stylized", frame=frame)
            layers = {"color": saved["color"]}
        for name in ("alpha", "depth"):  # ride along: the keyframe's own, else the source's at that frame
            if name in params.layers and name not in layers and name in source:
                layers[name] = source[name].astype(np.float32)
        return Keyframe(frame, source["color"], layers)

    def _per_frame(self, params, ctx, folder: KeyframeFolder | None, t: int, source) -> dict[str, np.ndarray]:
        if folder is None:
            out = {"color": preview_grade(source["color"], params.preview_levels)}
        else:
            out = folder.read(t, source["color"].shape[1::-1])
            if out is None:
                raise StageError(
                    f"stability {params.stability} mixes in every frame stylized on its own, but frame {t} has no "
                    f"image in {params.keyframes_folder}; set stability to 0 or add every frame", code="bad_input",
                    frame=t)
        for name in ("alpha", "depth"):
            if name in source and name not in out:
                out[name] = source[name].astype(np.float32)
        return out
