"""From the artist's settings (a plain dict made from `scene.stage`) to backend job requests.

Each job reads the same source frames and yields some layers of the final take; `assemble` in
jobs/driver.py copies each layer from the job that provides it. A take's colour comes from diffusion
when a prompt is set, otherwise from the matte (despilled) or the footage itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class PlanError(ValueError):
    """Settings that cannot become a job; the message names the setting and the fix."""


@dataclass
class JobSpec:
    name: str                      # the job's folder name under the take's jobs/ folder
    stage: str                     # backend stage
    params: dict
    frames: list[int]
    provides: tuple[str, ...]      # layers of the final take this job supplies


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


def matte_params(s: dict) -> dict:
    return {
        "method": "chroma",
        "key": {"screen": s.get("screen", "green"), "tolerance": float(s.get("key_tolerance", 0.18)),
                "softness": float(s.get("key_softness", 0.12))},
        "refine": {"grow": int(s.get("matte_grow", 0)), "feather": float(s.get("matte_feather", 0.0))},
    }


def footage_plan(s: dict, frames: list[int], available: list[str] | None) -> Plan:
    """Jobs that turn footage frames into a card's take, given the stages the backend offers.

    `available` is the backend's stage list (None when unknown: every wanted stage is assumed present).
    A wanted stage the backend lacks is an error that says which setting to change.
    """
    have = set(available) if available is not None else None

    def need(stage: str, why: str) -> None:
        if have is not None and stage not in have:
            raise PlanError(f"the backend has no {stage!r} stage (it has {', '.join(sorted(have)) or 'none'}); "
                            f"{why}, or update the backend")

    plan = Plan()
    if s.get("use_matte", True):
        need("matte", "untick Matte in Stage > Cards")
        plan.jobs.append(JobSpec("matte", "matte", matte_params(s), frames, ("color", "alpha")))
    if s.get("use_depth", False):
        need("depth", "untick Depth in Stage > Cards")
        plan.jobs.append(JobSpec("depth", "depth", {}, frames, ("depth",)))
    if s.get("use_diffusion", False):
        need("diffuse", "clear Diffuse in Stage > Cards")
        # Every frame is diffused with one seed; keyframe propagation joins once the backend has a
        # `propagate` stage whose inputs are settled (see the report of issue 5).
        plan.jobs.append(JobSpec("diffuse", "diffuse", diffuse_params(s), frames, ("color",)))
    if not plan.jobs:
        raise PlanError("nothing to do: tick at least one of Matte, Depth or Diffuse in Stage > Cards")
    return plan
