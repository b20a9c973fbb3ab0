"""Which engine does each step of a shot: the real model stage when the backend has its weights, else a
clearly labelled preview engine that needs none.

A step's candidates are tried in order. A stage the backend does not offer is skipped; a stage that needs
weights is probed on one frame; a `model_missing` answer (which names the model, its config key and how to
get it), or any other failure of the probe, moves on to the next candidate and is kept to tell the user.
An engine the user forced is never replaced: its failure is the shot's error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from blender_addon.headless.errors import ShotError


@dataclass(frozen=True)
class Engine:
    stage: str          # the backend stage's name
    label: str          # what the user reads
    weights: bool       # needs model weights (so it is probed before use)
    preview: bool = False
    params: tuple = ()  # default parameters, as (key, value) pairs, dotted keys for nested ones; the user's --set wins
    name: str = ""      # what `--engine STEP=NAME` calls it, when not the stage's name
    auto: bool = True   # tried without being asked; False: only when `--engine` names it

    @property
    def key(self) -> str:
        return self.name or self.stage


# In order of preference. Stylisation: ControlNet diffusion when its weights are there; otherwise the temporal
# pipeline's weight-free preview (colour-graded keyframes on grids, propagated by optical flow).
STEPS: dict[str, tuple[Engine, ...]] = {
    "matte": (Engine("matte", "chroma key matte (needs no weights)", weights=False),),
    "depth": (Engine("depth", "depth model (Depth Anything V2 / ZoeDepth / DPT)", weights=True),
              Engine("preview_depth", "PREVIEW: depth estimated from the silhouette (no weights)", False, True)),
    "stylize": (Engine("diffuse", "ControlNet diffusion (Stable Diffusion + ControlNets)", weights=True),
                Engine("propagate", "PREVIEW: non-diffusion stylisation (colour-graded keyframes propagated by "
                       "optical flow; no weights)", False, True, (("keyframes_from", "preview"),)),
                # video diffusion, on request (`--engine stylize=vace|animate`): a GPU's worth of weights
                Engine("propagate", "Wan VACE video diffusion (restyle keeping the footage's structure)", True,
                       params=(("engine", "vace"), ("video.pin_keyframes", False), ("video.reference", "none")),
                       name="vace", auto=False),
                Engine("propagate", "Wan-Animate video diffusion (the first keyframe's character performs the "
                       "footage)", True, params=(("engine", "animate"),), name="animate", auto=False)),
    "normal": (Engine("normal", "normals model (Marigold normals)", weights=True),
               Engine("preview_normal", "PREVIEW: normals from the depth layer / silhouette (no weights)", False, True)),
    "albedo": (Engine("albedo", "albedo model (Marigold intrinsics)", weights=True),
               Engine("preview_albedo", "PREVIEW: albedo as the colour over a smooth shading estimate (no weights)",
                      False, True)),
    "upscale": (Engine("upscale", "super-resolution model (Swin2SR / SD x4 upscaler)", weights=True),
                Engine("upscale", "PREVIEW: Lanczos resample to the frame's resolution (no weights)", False, True,
                       (("method", "resample"),))),
}


@dataclass
class Choice:
    step: str
    engine: Engine | None
    notes: list[str] = field(default_factory=list)   # why better engines were passed over

    def describe(self) -> str:
        if self.engine is None:
            return f"{self.step:8s} skipped: the backend offers none of {', '.join(e.stage for e in STEPS[self.step])}"
        return f"{self.step:8s} {self.engine.label}  [stage {self.engine.stage}]"


def choose_engines(offered: set[str], probe: Callable[[str], ShotError | None],
                   steps: tuple[str, ...] = ("matte", "depth", "stylize"),
                   forced: dict[str, str] | None = None) -> dict[str, Choice]:
    """One Choice per step. `probe(stage)` runs the stage on one frame and returns its error, if any;
    `forced` maps a step to a stage name the user asked for (no fallback then: its failure is an error)."""
    choices = {}
    for step in steps:
        choice = Choice(step, None)
        wanted = (forced or {}).get(step)
        for engine in STEPS[step]:
            if (wanted and engine.key != wanted) or (not wanted and not engine.auto):
                continue
            if wanted and not engine.auto:
                if engine.stage not in offered:
                    raise ShotError(step, f"the backend offers no stage {engine.stage!r} for {wanted!r}")
                choice.engine = engine   # asked for by name: its own failure, if any, is the shot's error
                break
            if engine.stage not in offered:
                if wanted:
                    raise ShotError(step, f"the backend offers no stage {wanted!r}; it offers {', '.join(sorted(offered))}")
                continue
            if engine.weights:
                error = probe(engine.stage)
                if error is not None:
                    if wanted:
                        raise error
                    # model_missing is the expected case; anything else is a fault of the real engine, shown
                    # loudly but not allowed to stop a shot that a preview engine can still make
                    kind = "" if error.code == "model_missing" else "FAILED, "
                    choice.notes.append(f"{kind}{engine.stage}: {error.detail}")
                    continue
            choice.engine = engine
            break
        choices[step] = choice
    return choices
