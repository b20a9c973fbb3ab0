"""ControlNet diffusion of one frame: Stable Diffusion 1.x/2.x and SDXL, txt2img or img2img, Multi-ControlNet.

Pure: arrays and a `DiffuseParams` in, a `DiffuseOutput` out; no zmq, no bpy. Models come from the
registry (backend/models.py) and stay warm between calls.

    registry = ModelRegistry.from_file("models.json")
    diffuse = DiffusePipeline(registry, device="cuda")
    params = parse_params(DiffuseParams, {"prompt": "a knight", "controls": [{"type": "depth"}]})
    out = diffuse(params, image=frame_rgb, maps={"depth": z_pass})
    out.image  # HxWx3 uint8
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from backend.errors import ModelMissing
from backend.params import ParamError, param
from backend.pipelines.diffuse_controls import (
    ANNOTATORS, CONTROL_TYPES, Annotators, as_rgb_u8, prepare_map, resize_map,
)
from backend.pipelines.diffuse_loading import (
    LoadedBase, apply_loras, checkpoint_family, load_base, load_controlnet, lora_role, pipeline_classes, torch_dtype,
)
from backend.pipelines.diffuse_schedulers import canonical_sampler, make_scheduler

if TYPE_CHECKING:
    from backend.models import ModelRegistry

SIZE_MULTIPLE = 8           # what the VAE (8x down) and the pipelines' check_inputs accept
DEFAULT_SIZE = {"sd1": 512, "sd2": 768, "sdxl": 1024}


@dataclass
class ControlParams:
    """One ControlNet unit (A1111's "ControlNet Unit")."""

    type: str = param("depth", choices=CONTROL_TYPES, help="what the map shows")
    weight: float = param(1.0, min=0.0, max=2.0, help="control weight (conditioning scale)")
    start: float = param(0.0, min=0.0, max=1.0, help="fraction of the steps where guidance starts")
    end: float = param(1.0, min=0.0, max=1.0, help="fraction of the steps where guidance ends")
    source: str = param("auto", choices=("auto", "map", "annotator"),
                        help="map: the supplied map (a render pass); annotator: computed from the frame; auto: map if supplied")
    model: str = param("", help="registry role of the ControlNet; default controlnet.<type> (controlnet_xl.<type> for SDXL)")

    def validate(self) -> None:
        if self.start >= self.end:
            raise ParamError("controls.start", f"start ({self.start}) must be below end ({self.end})")


@dataclass
class LoraParams:
    name: str = param(help="registry role lora.<name> (or the full role)")
    strength: float = param(1.0, min=-4.0, max=4.0, help="LoRA weight; 0 switches it off")


@dataclass
class DiffuseParams:
    """Everything one diffusion call needs besides the pixels. Names follow A1111 where it has one."""

    prompt: str = param("", help="what to paint")
    negative_prompt: str = param("", help="what to avoid")
    mode: str = param("img2img", choices=("txt2img", "img2img"), help="img2img starts from the frame's colour")
    strength: float = param(0.75, min=0.0, max=1.0, help="img2img denoising strength: 0 keeps the frame, 1 ignores it")
    checkpoint: str = param("checkpoint", help="registry role of the checkpoint")
    vae: str = param("auto", help="registry role of a VAE override; auto: the 'vae' role if configured; none: the checkpoint's")
    sampler: str = param("Euler a", help="A1111 sampler name (Euler a, DPM++ 2M Karras, DDIM, UniPC, LCM ...)")
    steps: int = param(20, min=1, max=150)
    cfg: float = param(7.0, min=0.0, max=30.0, help="classifier-free guidance scale (1 or less: off)")
    seed: int = param(0, min=0, max=2**32 - 1)
    width: int = param(0, min=0, max=8192, help="0: the frame's width (or the model's native size)")
    height: int = param(0, min=0, max=8192, help="0: the frame's height (or the model's native size)")
    controls: list[ControlParams] = param([], help="ControlNet units, any subset of the control types")
    loras: list[LoraParams] = param([], help="LoRAs and their strengths")
    depth_range: list[float] = param([], help="[near, far] scene distances that span depth maps; empty: per frame")
    dtype: str = param("auto", choices=("auto", "fp16", "bf16", "fp32"), help="auto: fp16 on GPU, fp32 on CPU")
    offload: str = param("none", choices=("none", "model", "sequential"),
                         help="CPU offload for small GPUs: model (fast) or sequential (least memory)")
    vae_tiling: bool = param(False, help="decode in tiles so 4K frames fit in memory")

    def validate(self) -> None:
        self.sampler = canonical_sampler(self.sampler)
        types = [c.type for c in self.controls]
        dup = sorted({t for t in types if types.count(t) > 1})
        if dup:
            raise ParamError("controls", f"{dup[0]!r} appears twice; use one unit per control type")
        if self.depth_range and (len(self.depth_range) != 2 or not 0 < self.depth_range[0] < self.depth_range[1]):
            raise ParamError("depth_range", f"expected [near, far] with 0 < near < far, got {self.depth_range}")
        if self.mode == "img2img" and int(self.steps * self.strength) < 1:
            raise ParamError(
                "strength", f"{self.strength} x {self.steps} steps leaves no denoising step; raise strength to at "
                f"least {1 / self.steps:.3g} or raise steps"
            )
        names = [lo.name for lo in self.loras]
        if len(set(names)) != len(names):
            raise ParamError("loras", "a LoRA is listed twice")


@dataclass
class DiffuseOutput:
    image: np.ndarray                         # HxWx3 uint8, at `size`
    seed: int
    size: tuple[int, int]                     # (width, height) generated
    requested_size: tuple[int, int]           # (width, height) asked for, before rounding
    steps_run: int
    family: str
    control_maps: dict[str, np.ndarray] = field(default_factory=dict)   # the maps ControlNet saw
    notes: list[str] = field(default_factory=list)                     # rounding and other adjustments


def round_size(width: int, height: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """Nearest multiple of `multiple` (at least one multiple) on each side."""
    return tuple(max(multiple, int(round(v / multiple)) * multiple) for v in (width, height))


class DiffusePipeline:
    """Diffuse frames with warm models. One instance per device; the registry holds the loaded weights."""

    def __init__(self, registry: ModelRegistry, device: str = "cpu"):
        self.registry = registry
        self.device = device
        self.annotators = Annotators(registry, device)

    # ---- checks ---------------------------------------------------------------------------------------
    def check_inputs(self, params: DiffuseParams, image: np.ndarray | None, maps: dict[str, np.ndarray]) -> None:
        """Fail before any model loads, naming the field and the fix."""
        if params.mode == "img2img" and image is None:
            raise ParamError("mode", "img2img needs the frame's colour; pass image=... or use mode txt2img")
        if image is not None and (image.ndim not in (2, 3) or image.shape[0] < 8 or image.shape[1] < 8):
            raise ParamError("image", f"expected an HxWx3 image at least 8 px a side, got shape {image.shape}")
        unknown = sorted(set(maps) - set(CONTROL_TYPES))
        if unknown:
            raise ParamError("maps", f"unknown control type {unknown[0]!r}; accepted: {', '.join(CONTROL_TYPES)}")
        for c in params.controls:
            if c.source == "map" and c.type not in maps:
                raise ParamError("controls.source", f"{c.type!r} asks for a supplied map but none was given; "
                                                    "render that pass or set source to annotator")
            if c.source != "map" and c.type not in maps:
                if ANNOTATORS.get(c.type) is None:
                    raise ParamError("controls.type", f"no {c.type!r} map was supplied and no annotator computes "
                                                      "one; render that pass in Blender or drop the control")
                if image is None:
                    raise ParamError("controls.source", f"{c.type!r} needs a supplied map or a frame to annotate")
        if params.dtype == "fp16" and not str(self.device).startswith("cuda"):
            raise ParamError("dtype", "fp16 needs a GPU; use auto or fp32 on CPU")

    # ---- the call -------------------------------------------------------------------------------------
    def __call__(
        self,
        params: DiffuseParams,
        image: np.ndarray | None = None,
        maps: dict[str, np.ndarray] | None = None,
        *,
        seed: int | None = None,
        on_step: Callable[[int, int], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> DiffuseOutput:
        """Diffuse one frame.

        Args:
            params: validated DiffuseParams (see `backend.params.parse_params`).
            image: the frame's colour, HxWx3 uint8 (or float in [0, 1]); needed for img2img and annotators.
            maps: control maps by control type ("depth", "normal", ...), e.g. Blender's passes; float depth in
                scene units is turned into a ControlNet depth map. Controls without a map use an annotator.
            seed: overrides params.seed (the stage passes each frame's own seed).
            on_step: called as on_step(step, total) after every denoising step.
            is_cancelled: polled after every step; True stops the call with `Cancelled` before the next step.
        """
        from backend.stages.base import Cancelled  # here: the stages package imports this module

        maps = dict(maps or {})
        self.check_inputs(params, image, maps)
        seed = params.seed if seed is None else seed
        notes: list[str] = []
        if params.offload != "none" and not str(self.device).startswith("cuda"):
            notes.append(f"offload {params.offload!r} ignored: it only helps on a GPU")
        offload = params.offload if str(self.device).startswith("cuda") else "none"
        dtype = torch_dtype(params.dtype, self.device)

        base = load_base(self.registry, params.checkpoint, self._vae_role(params), self.device, dtype, offload)
        requested, size = self._size(params, image, base.family)
        if size != requested:
            notes.append(f"size {requested[0]}x{requested[1]} rounded to {size[0]}x{size[1]} "
                         f"(a multiple of {SIZE_MULTIPLE})")
        width, height = size
        control_maps = self._control_maps(params, image, maps, width, height)
        pipe = self._pipeline(base, params, dtype, offload)
        apply_loras(self.registry, base, [(lo.name, lo.strength) for lo in params.loras])
        pipe.scheduler = make_scheduler(params.sampler, base.scheduler_config, seed)
        if params.vae_tiling:
            pipe.vae.enable_tiling()
        else:
            pipe.vae.disable_tiling()

        if is_cancelled is not None and is_cancelled():
            raise Cancelled()
        steps_run = 0

        def step_end(p, step: int, timestep, tensors: dict) -> dict:
            nonlocal steps_run
            steps_run = step + 1
            if on_step is not None:
                on_step(steps_run, p.num_timesteps)
            if is_cancelled is not None and is_cancelled():
                raise Cancelled()
            return tensors

        kwargs = self._call_kwargs(params, image, control_maps, width, height)
        import torch  # here, not at the top: the server starts without torch and diffusers

        generator = torch.Generator("cpu").manual_seed(int(seed))  # CPU noise: the same image on any device
        with torch.inference_mode():
            result = pipe(
                prompt=params.prompt, negative_prompt=params.negative_prompt or None,
                num_inference_steps=params.steps, guidance_scale=params.cfg, generator=generator,
                output_type="np", callback_on_step_end=step_end, **kwargs,
            )
        frame = np.round(np.clip(result.images[0], 0.0, 1.0) * 255.0).astype(np.uint8)
        return DiffuseOutput(
            image=frame, seed=int(seed), size=size, requested_size=requested, steps_run=steps_run,
            family=base.family, control_maps=control_maps, notes=notes,
        )

    # ---- pieces ---------------------------------------------------------------------------------------
    def _vae_role(self, params: DiffuseParams) -> str | None:
        return vae_role(self.registry, params)

    def _size(self, params, image, family) -> tuple[tuple[int, int], tuple[int, int]]:
        native = DEFAULT_SIZE[family]
        frame_w, frame_h = (image.shape[1], image.shape[0]) if image is not None else (native, native)
        requested = (params.width or frame_w, params.height or frame_h)
        return requested, round_size(*requested)

    def _control_maps(self, params, image, maps, width, height) -> dict[str, np.ndarray]:
        out = {}
        depth_range = tuple(params.depth_range) if params.depth_range else None
        for c in params.controls:
            if c.type in maps and c.source != "annotator":
                out[c.type] = resize_map(c.type, prepare_map(c.type, maps[c.type], depth_range), width, height)
            else:
                out[c.type] = self.annotators(c.type, as_rgb_u8(image), width, height)
        return out

    def _pipeline(self, base: LoadedBase, params: DiffuseParams, dtype, offload):
        """The txt2img / img2img / ControlNet pipeline for this call, sharing the base's components."""
        roles = tuple(controlnet_role(c, base.family) for c in params.controls)
        controlnets = [load_controlnet(self.registry, r, self.device, dtype, offload) for r in roles]
        cls = pipeline_classes(base.family)[(params.mode == "img2img", bool(roles))]
        key = (cls.__name__, roles, tuple(id(m) for m in controlnets))
        pipe = base.derived.get(key)
        if pipe is None:
            base.derived.clear()  # one derived pipeline at a time: the ControlNets it holds may be stale
            extra = {"controlnet": controlnets} if roles else {}
            pipe = base.pipe if cls is type(base.pipe) else cls.from_pipe(base.pipe, **extra)
            if offload == "model":
                pipe.enable_model_cpu_offload(device=self.device)
            elif offload == "sequential":
                pipe.enable_sequential_cpu_offload(device=self.device)
            pipe.set_progress_bar_config(disable=True)
            base.derived[key] = pipe
        return pipe

    def _call_kwargs(self, params, image, control_maps, width, height) -> dict:
        from PIL import Image

        kwargs: dict = {}
        img2img = params.mode == "img2img"
        if img2img:
            init = resize_map("color", as_rgb_u8(image), width, height)
            kwargs.update(image=Image.fromarray(init), strength=params.strength)
        else:
            kwargs.update(width=width, height=height)
        if control_maps:
            cond = [Image.fromarray(m) for m in control_maps.values()]
            kwargs["control_image" if img2img else "image"] = cond
            if img2img:
                kwargs.update(width=width, height=height)
            kwargs.update(
                controlnet_conditioning_scale=[c.weight for c in params.controls],
                control_guidance_start=[c.start for c in params.controls],
                control_guidance_end=[c.end for c in params.controls],
            )
        return kwargs


def vae_role(registry: ModelRegistry, params: DiffuseParams) -> str | None:
    if params.vae == "none":
        return None
    if params.vae == "auto":
        return "vae" if registry.has("vae") else None
    return params.vae


def controlnet_role(c: ControlParams, family: str) -> str:
    if c.model:
        return c.model
    return {"sdxl": f"controlnet_xl.{c.type}", "sd2": f"controlnet_sd2.{c.type}"}.get(family, f"controlnet.{c.type}")


def model_roles(registry: ModelRegistry, params: DiffuseParams) -> list[str]:
    """Every registry role a call with these parameters may load: what a job's identity covers.

    The ControlNet roles depend on the checkpoint's family, read from its config on disk (offline); a
    checkpoint not on this machine counts as SD 1.x here, and the job reports it missing when it loads.
    """
    if registry is None:
        from backend.models import load_registry

        registry = load_registry()
    registry = registry.offline()
    roles = [params.checkpoint, vae_role(registry, params)]
    family = "sd1"
    if params.controls:
        try:
            family = checkpoint_family(registry, registry.resolve(params.checkpoint))
        except (ModelMissing, OSError, ValueError):
            pass
    roles += [controlnet_role(c, family) for c in params.controls]
    if any(c.source != "map" and (ANNOTATORS.get(c.type) or ("CannyDetector",))[0] != "CannyDetector"
           for c in params.controls):
        roles.append("annotators")
    roles += [lora_role(lo.name) for lo in params.loras]
    return [r for r in roles if r]
