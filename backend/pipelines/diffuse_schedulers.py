"""Sampler names as artists know them from A1111, mapped onto diffusers schedulers.

Each name gives a scheduler class and the config overrides that reproduce A1111's variant
(Karras sigmas, SDE solver, ancestral noise). Names are matched exactly, then ignoring case and spaces.
"""

from __future__ import annotations

from typing import Any

from backend.params import ParamError

# name -> (diffusers class name, config overrides)
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "LMS Karras": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 Karras": ("KDPM2DiscreteScheduler", {"use_karras_sigmas": True}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {}),
    "DPM2 a Karras": ("KDPM2AncestralDiscreteScheduler", {"use_karras_sigmas": True}),
    "DPM++ 2S a": ("DPMSolverSinglestepScheduler", {}),
    "DPM++ 2S a Karras": ("DPMSolverSinglestepScheduler", {"use_karras_sigmas": True}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "DPM++ 2M SDE Karras": (
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
    ),
    "DPM++ SDE": ("DPMSolverSDEScheduler", {}),
    "DPM++ SDE Karras": ("DPMSolverSDEScheduler", {"use_karras_sigmas": True}),
    # Latents are not bounded to [-1, 1]; clipping the predicted sample there (the DDIM/DDPM default when a
    # checkpoint's config does not say) would flatten them.
    "DDIM": ("DDIMScheduler", {"clip_sample": False}),
    "DDPM": ("DDPMScheduler", {"clip_sample": False}),
    "PLMS": ("PNDMScheduler", {"skip_prk_steps": True}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "DEIS": ("DEISMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
    "TCD": ("TCDScheduler", {}),
}

SAMPLER_NAMES = tuple(SAMPLERS)


def _squash(name: str) -> str:
    return name.replace(" ", "").replace("_", "").lower()


def canonical_sampler(name: str, field: str = "sampler") -> str:
    """The A1111 spelling of `name` ("dpm++ 2m karras" -> "DPM++ 2M Karras"); ParamError listing all if unknown."""
    if name in SAMPLERS:
        return name
    by_squash = {_squash(n): n for n in SAMPLERS}
    if _squash(name) in by_squash:
        return by_squash[_squash(name)]
    raise ParamError(field, f"unknown sampler {name!r}; choose one of {', '.join(SAMPLER_NAMES)}")


def make_scheduler(name: str, base_config: dict, seed: int | None = None):
    """A fresh scheduler for sampler `name`, built from the checkpoint's own scheduler config.

    `seed` feeds the Brownian-tree noise of the SDE samplers, which do not take a torch generator, so
    the same seed gives the same image with them too.
    """
    import diffusers  # here: the sampler names are needed at start-up, the classes only with a job

    class_name, overrides = SAMPLERS[canonical_sampler(name)]
    cls = getattr(diffusers, class_name)
    config = dict(base_config)
    config.update(overrides)
    if class_name == "DPMSolverSDEScheduler":
        try:
            import torchsde  # noqa: F401
        except ImportError:
            raise ParamError(
                "sampler", f"{name!r} needs the torchsde package (pip install torchsde); or pick \"DPM++ 2M SDE\""
            ) from None
        config["noise_sampler_seed"] = seed
    return cls.from_config(config)
