"""A1111 sampler names onto diffusers schedulers."""

from __future__ import annotations

import numpy as np
import pytest

from backend.params import ParamError, parse_params
from backend.pipelines.diffuse import DiffuseParams
from backend.pipelines.diffuse_schedulers import SAMPLER_NAMES, canonical_sampler, make_scheduler

from diffuse_fixtures import diffuse, registry, tiny_models  # noqa: F401  (pytest fixtures)

SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "prediction_type": "epsilon",
}


@pytest.mark.parametrize("name, cls, attrs", [
    ("Euler a", "EulerAncestralDiscreteScheduler", {}),
    ("Euler", "EulerDiscreteScheduler", {}),
    ("DPM++ 2M", "DPMSolverMultistepScheduler", {"use_karras_sigmas": False, "algorithm_type": "dpmsolver++"}),
    ("DPM++ 2M Karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    ("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    ("DPM++ SDE Karras", "DPMSolverSDEScheduler", {"use_karras_sigmas": True}),
    ("DDIM", "DDIMScheduler", {"clip_sample": False}),
    ("UniPC", "UniPCMultistepScheduler", {}),
    ("LCM", "LCMScheduler", {}),
    ("Heun", "HeunDiscreteScheduler", {}),
    ("LMS", "LMSDiscreteScheduler", {}),
    ("PLMS", "PNDMScheduler", {"skip_prk_steps": True}),
])
def test_a1111_names_map_to_schedulers_keeping_the_checkpoint_betas(name, cls, attrs):
    scheduler = make_scheduler(name, SD15_SCHEDULER, seed=1)
    assert type(scheduler).__name__ == cls
    assert scheduler.config.beta_end == 0.012 and scheduler.config.beta_schedule == "scaled_linear"
    for key, value in attrs.items():
        assert scheduler.config[key] == value


def test_every_listed_sampler_builds():
    for name in SAMPLER_NAMES:
        assert make_scheduler(name, SD15_SCHEDULER, seed=0) is not None


def test_names_match_ignoring_case_and_spaces_and_unknown_ones_list_the_choices():
    assert canonical_sampler("dpm++ 2m karras") == "DPM++ 2M Karras"
    assert canonical_sampler("euler_a") == "Euler a"
    assert parse_params(DiffuseParams, {"sampler": "unipc"}).sampler == "UniPC"
    with pytest.raises(ParamError) as err:
        parse_params(DiffuseParams, {"sampler": "DPM fast"})
    assert err.value.field == "sampler"
    assert "unknown sampler 'DPM fast'" in str(err.value) and "DPM++ 2M Karras" in str(err.value)


@pytest.mark.parametrize("sampler", ["DPM++ SDE Karras", "DPM++ 2M SDE", "Euler a", "UniPC"])
def test_stochastic_and_multistep_samplers_are_reproducible(diffuse, sampler):
    frame = np.full((32, 32, 3), 100, np.uint8)
    p = parse_params(DiffuseParams, {"mode": "txt2img", "steps": 3, "width": 32, "height": 32, "sampler": sampler})
    a = diffuse(p, image=frame).image
    b = diffuse(p, image=frame).image
    c = diffuse(p, image=frame, seed=99).image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
