"""From the artist's settings (a plain dict made from `scene.stage`) to backend job requests.

Each job reads the same source frames and yields some layers of the final take; `assemble` in
jobs/driver.py copies each layer from the job that provides it. A take's colour comes from diffusion
when a prompt is set, otherwise from the matte (despilled) or the footage itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .frames import keyframes


class PlanError(ValueError):
    """Settings that cannot become a job; the message names the setting and the fix."""


@dataclass
class JobSpec:
    name: str                      # the job's folder name under the take's jobs/ folder
    stage: str                     # backend stage
    params: dict
    frames: list[int]
    provides: tuple[str, ...]      # layers of the final take this job supplies
    reads: tuple[str, ...] = ()    # earlier jobs whose takes (layers merged, later wins) are its input; () = the footage
    sides: dict = field(default_factory=dict)  # side inputs: {name: image file} (the matte's clean plate)


@dataclass
class Plan:
    jobs: list[JobSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # what was left out and why, for the user

    def layer_sources(self) -> dict[str, str]:
        """{final layer: job name}; a later job providing the same layer wins."""
        out: dict[str, str] = {}
        for job in self.jobs:
            for layer in job.provides:
                out[layer] = job.name
        return out


def diffuse_params(s: dict) -> dict:
    """Parameters of the backend's `diffuse` stage from the Prompt & model and ControlNet settings."""
    if not s.get("prompt", "").strip():
        raise PlanError("the prompt is empty; write what to paint in Stage > Prompt & model")
    params = {
        "prompt": s["prompt"],
        "negative_prompt": s.get("negative_prompt", ""),
        "mode": "img2img",
        "strength": float(s.get("denoise", 0.75)),
        "sampler": s.get("sampler", "Euler a"),
        "steps": int(s.get("steps", 20)),
        "cfg": float(s.get("cfg", 7.0)),
        "seed": int(s.get("seed", 0)),
        "controls": [
            {"type": u["type"], "weight": float(u["weight"]), "start": float(u["start"]), "end": float(u["end"]),
             "source": u.get("source", "auto")}
            for u in s.get("controls", []) if u.get("enabled", True)
        ],
        "loras": [{"name": lora["name"], "strength": float(lora["strength"])}
                  for lora in s.get("loras", []) if lora.get("enabled", True) and lora.get("name")],
    }
    if s.get("checkpoint"):
        params["checkpoint"] = s["checkpoint"]
    for unit in params["controls"]:
        if unit["start"] > unit["end"]:
            raise PlanError(f"ControlNet unit {unit['type']}: start {unit['start']} is after end {unit['end']}; "
                            "start must not exceed end")
    return params


# The rendered pass that feeds each ControlNet type; the others are always estimated from the colour.
PASS_OF_CONTROL = {"depth": "depth", "normal": "normal", "lineart": "lineart", "openpose": "pose",
                   "segmentation": "segmentation"}


def pass_layers(s: dict) -> tuple[str, ...]:
    """The passes to render and send for the enabled ControlNet units: colour always, then each unit's
    pass unless the unit asks for the backend's annotator."""
    layers = ["color"]
    for unit in s.get("controls", []):
        layer = PASS_OF_CONTROL.get(unit["type"])
        if unit.get("enabled", True) and unit.get("source", "auto") != "annotator":
            if layer is None and unit.get("source") == "map":
                raise PlanError(f"ControlNet unit {unit['type']}: Stage renders no {unit['type']} pass; "
                                "set its source to Annotator or Auto")
            if layer is not None and layer not in layers:
                layers.append(layer)
    return tuple(layers)


def wants_filmed_shadow(s: dict) -> bool:
    """The card is to lay the filmed shadow (Shadow: Filmed or Both), so the matte writes its shadow layer."""
    return s.get("card_shadow", "BLENDER") in ("FILMED", "BOTH")


def matte_params(s: dict) -> dict:
    params = {
        "method": "chroma",
        "key": {"screen": s.get("screen", "green"), "tolerance": float(s.get("key_tolerance", 0.18)),
                "softness": float(s.get("key_softness", 0.12))},
        "refine": {"grow": int(s.get("matte_grow", 0)), "feather": float(s.get("matte_feather", 0.0))},
    }
    if wants_filmed_shadow(s):
        params["shadow"] = True
    if s.get("clean_plate"):
        params["key"]["clean_plate"] = True  # the screen read per pixel from the plate (sent as side input)
    return params


def upscale_factor(footage_height: int, frame_height: int) -> int:
    """1, 2 or 4: the smallest factor that brings the footage to the rendered frame's height (at most 4)."""
    need = frame_height / max(1, footage_height)
    return 1 if need <= 1 else 2 if need <= 2 else 4


def footage_plan(s: dict, frames: list[int], available: list[str] | None,
                 heights: tuple[int, int] | None = None) -> Plan:
    """Jobs that turn footage frames into a card's take, given the stages the backend offers.

    `available` is the backend's stage list (None when unknown: every wanted stage is assumed present).
    A wanted stage the backend lacks is an error that says which setting to change. `heights` is (the
    footage's, the rendered frame's): a taller frame gets the card's colour (and albedo) upscaled to it.
    """
    have = set(available) if available is not None else None

    def need(stage: str, why: str) -> None:
        if have is not None and stage not in have:
            raise PlanError(f"the backend has no {stage!r} stage (it has {', '.join(sorted(have)) or 'none'}); "
                            f"{why}, or update the backend")

    if wants_filmed_shadow(s) and not s.get("use_matte", True):
        raise PlanError("Shadow is Filmed or Both, which needs the matte's shadow layer: tick Matte in Stage > Cards, "
                        "or set Shadow to Blender's")
    plan = Plan()
    if s.get("use_matte", True):
        need("matte", "untick Matte in Stage > Cards")
        layers = ("color", "alpha", "shadow") if wants_filmed_shadow(s) else ("color", "alpha")
        sides = {"clean_plate": s["clean_plate"]} if s.get("clean_plate") else {}
        plan.jobs.append(JobSpec("matte", "matte", matte_params(s), frames, layers, sides=sides))
    if s.get("use_depth", False):
        need("depth", "untick Depth in Stage > Cards")
        plan.jobs.append(JobSpec("depth", "depth", {}, frames, ("depth",)))
    if s.get("use_diffusion", False):
        need("diffuse", "clear Diffuse in Stage > Cards")
        params = diffuse_params(s)
        keys = keyframes(frames, s.get("keyframe_mode", "INTERVAL"), int(s.get("keyframe_interval", 8)))
        can_propagate = have is None or "propagate" in have
        engine = s.get("engine", "KEYFRAMES").lower()
        if engine != "keyframes":
            # A video engine makes every frame itself, segment by segment; the diffused keyframes are its
            # reference image (and, for VACE, kept frames).
            need("propagate", "set Engine to Keyframes + flow in Stage > Prompt & Model")
            video = {"prompt": params["prompt"], "negative_prompt": params["negative_prompt"],
                     "seed": params["seed"], "steps": params["steps"],
                     "size": int(s.get("video_size", 832)) // 16 * 16 or 16}
            sides = {}
            if s.get("character_image"):  # the artist's own character instead of the first diffused keyframe
                video["reference"], sides["reference"] = "side", s["character_image"]
            plan.jobs.append(JobSpec("propagate", "propagate", {
                "engine": engine, "keyframes_from": "diffuse", "diffuse": params, "keyframes": keys, "video": video,
            }, frames, ("color",), sides=sides))
        elif len(keys) < len(frames) and can_propagate:
            # One job, local or remote alike: the backend diffuses the keyframes in grids (one pass per
            # grid, so they share a style) and rebuilds every frame from them by optical flow.
            plan.jobs.append(JobSpec("propagate", "propagate", {
                "keyframes_from": "diffuse", "diffuse": params, "keyframes": keys,
                "stability": float(s.get("stability", 0.0)),
            }, frames, ("color",)))
        else:
            if len(keys) < len(frames):
                plan.notes.append("the backend has no propagate stage: every frame is diffused instead of keyframes")
            plan.jobs.append(JobSpec("diffuse", "diffuse", params, frames, ("color",)))
    if s.get("use_relight", False):
        # normals from the footage; albedo too, unless diffusion repaints the colour (the footage's albedo
        # would then replace the painting on a relit card)
        need("normal", "untick Relight in Stage > Cards")
        plan.jobs.append(JobSpec("normal", "normal", {}, frames, ("normal",)))
        if s.get("use_diffusion", False):
            plan.notes.append("Relight with Diffuse: the card is shaded by the footage's normals; its colour stays "
                              "the diffused one (no albedo layer)")
        else:
            need("albedo", "untick Relight in Stage > Cards")
            plan.jobs.append(JobSpec("albedo", "albedo", {}, frames, ("albedo",)))
    if not plan.jobs:
        raise PlanError("nothing to do: tick at least one of Matte, Depth or Diffuse in Stage > Cards")
    _add_upscale(plan, s, frames, heights, need)
    return plan


def _add_upscale(plan: Plan, s: dict, frames: list[int], heights, need) -> None:
    """An upscale job over the finished colour, matte and albedo, when the frame is taller than the footage."""
    mode = s.get("texture_upscale", "PREVIEW")
    factor = upscale_factor(*heights) if heights else 1
    sources = plan.layer_sources()
    if mode == "OFF" or factor == 1 or "color" not in sources:
        return
    need("upscale", "set Textures to Off in Stage > Cards")
    reads = tuple(dict.fromkeys(sources[layer] for layer in ("color", "alpha", "albedo") if layer in sources))
    extra = ["albedo"] if "albedo" in sources else []
    params = {"method": "resample", "scale": factor, "layers": extra} if mode == "PREVIEW" else \
        {"method": "model", "layers": extra}
    provides = ("color", *(["alpha"] if "alpha" in sources else []), *extra)
    plan.jobs.append(JobSpec("upscale", "upscale", params, frames, provides, reads=reads))
    if mode == "PREVIEW":
        plan.notes.append(f"PREVIEW: the card's textures are resampled {factor}x to the frame's height (Lanczos); "
                          "set Textures to Model with an upscaler configured on the backend for real detail")
