"""ControlNet diffusion on tiny models built by the tests, loaded through the same code users run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.models import ModelMissing, ModelRegistry
from backend.params import ParamError, parse_params
from backend.pipelines.diffuse import DiffuseParams, DiffusePipeline, round_size
from backend.pipelines.diffuse_loading import load_base
from backend.stages.base import Cancelled

from diffuse_fixtures import diffuse, registry, tiny_models  # noqa: F401  (pytest fixtures)

SIZE = 64


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """A smooth colour frame: a lit sphere-ish blob on a gradient."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    blob = np.exp(-((x - 0.5) ** 2 + (y - 0.45) ** 2) / 0.05)
    rgb = np.stack([0.3 + 0.6 * blob, 0.2 + 0.5 * x, 0.6 - 0.4 * y], axis=-1)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def depth_pass() -> np.ndarray:
    """Scene distances as Blender's Z pass gives them: a near sphere in front of a far wall."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    z = np.full((SIZE, SIZE), 8.0, np.float32)
    inside = (x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.09
    z[inside] = 3.0
    return z


def params(**values) -> DiffuseParams:
    base = {"mode": "txt2img", "steps": 2, "width": SIZE, "height": SIZE, "prompt": "a knight"}
    base.update(values)
    return parse_params(DiffuseParams, base)


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_same_seed_same_image_other_seed_other_image(diffuse, frame):
    a = diffuse(params(seed=11), image=frame).image
    b = diffuse(params(seed=11), image=frame).image
    c = diffuse(params(seed=12), image=frame).image
    assert a.shape == (SIZE, SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert diff(a, c) > 5


def test_a_controlnet_map_changes_the_image_and_weight_zero_equals_none(diffuse, frame, depth_pass):
    plain = diffuse(params(), image=frame).image
    guided = diffuse(params(controls=[{"type": "depth"}]), image=frame, maps={"depth": depth_pass})
    off = diffuse(params(controls=[{"type": "depth", "weight": 0.0}]), image=frame, maps={"depth": depth_pass}).image
    assert diff(plain, guided.image) > 1
    assert np.abs(plain.astype(int) - off.astype(int)).max() <= 1
    # the map ControlNet saw is the Z pass as inverse depth: the near sphere white, the far wall black
    seen = guided.control_maps["depth"][:, :, 0]
    assert seen[SIZE // 2, SIZE // 2] == 255 and seen[2, 2] == 0


def test_multi_controlnet_with_guidance_windows(diffuse, frame, depth_pass):
    edges = np.zeros((SIZE, SIZE), np.uint8)
    edges[:, SIZE // 2] = 255
    one = diffuse(params(controls=[{"type": "depth"}]), image=frame, maps={"depth": depth_pass}).image
    both = diffuse(params(controls=[{"type": "depth"}, {"type": "canny", "weight": 0.8, "start": 0.0, "end": 0.5}]),
                   image=frame, maps={"depth": depth_pass, "canny": edges}).image
    assert diff(one, both) > 0.5
    # canny guiding only the first half of 2 steps acts on step 1 alone: not the same as guiding both steps
    full = diffuse(params(controls=[{"type": "depth"}, {"type": "canny", "weight": 0.8}]),
                   image=frame, maps={"depth": depth_pass, "canny": edges}).image
    assert diff(both, full) > 0.01


def test_img2img_strength_near_zero_keeps_the_input(diffuse, registry, frame):
    gentle = diffuse(parse_params(DiffuseParams, {"mode": "img2img", "steps": 50, "strength": 0.02}), image=frame)
    strong = diffuse(parse_params(DiffuseParams, {"mode": "img2img", "steps": 2, "strength": 1.0}), image=frame)
    assert gentle.steps_run == 1
    # "the input" as a latent model can hold it: the frame through the VAE and back
    pipe = load_base(registry, "checkpoint", None, "cpu", torch.float32, "none").pipe
    with torch.no_grad():
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 127.5 - 1
        back = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mode()).sample
    round_trip = np.round(((back[0].permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1) * 255).astype(np.uint8)
    assert diff(gentle.image, round_trip) < 3
    assert diff(strong.image, round_trip) > 4 * diff(gentle.image, round_trip) + 5


def test_lora_strength_zero_equals_no_lora(diffuse, frame):
    plain = diffuse(params(), image=frame).image
    inked = diffuse(params(loras=[{"name": "ink", "strength": 1.0}]), image=frame).image
    zero = diffuse(params(loras=[{"name": "ink", "strength": 0.0}]), image=frame).image
    after = diffuse(params(), image=frame).image  # the LoRA is unloaded again when a job drops it
    assert diff(plain, inked) > 0.5
    assert np.abs(plain.astype(int) - zero.astype(int)).max() <= 1
    assert np.array_equal(plain, after)


def test_single_file_checkpoint_with_local_config_equals_the_folder(diffuse, frame):
    folder = diffuse(params(seed=5), image=frame).image
    single = diffuse(params(seed=5, checkpoint="checkpoint.single"), image=frame).image
    assert np.array_equal(folder, single)


def test_vae_override_is_used(diffuse, frame):
    own = diffuse(params(), image=frame).image
    other = diffuse(params(vae="vae.alt"), image=frame).image
    assert diff(own, other) > 1


def test_sdxl_txt2img_img2img_and_controlnet(diffuse, frame, depth_pass):
    a = diffuse(params(checkpoint="checkpoint.xl", seed=3), image=frame)
    b = diffuse(params(checkpoint="checkpoint.xl", seed=3, controls=[{"type": "depth"}]), image=frame,
                maps={"depth": depth_pass})
    c = diffuse(parse_params(DiffuseParams, {"checkpoint": "checkpoint.xl", "mode": "img2img", "steps": 2,
                                             "strength": 0.5}), image=frame)
    assert a.family == "sdxl" and a.image.shape == (SIZE, SIZE, 3)
    assert diff(a.image, b.image) > 1
    assert c.steps_run == 1 and c.image.shape == frame.shape


def test_annotator_computes_a_missing_map_from_local_weights(diffuse):
    disc = np.full((SIZE, SIZE, 3), 30, np.uint8)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    disc[(x - 32) ** 2 + (y - 32) ** 2 < 15**2] = 220
    out = diffuse(params(controls=[{"type": "softedge"}, {"type": "canny"}]), image=disc)
    soft, canny = out.control_maps["softedge"], out.control_maps["canny"]
    assert soft.shape == canny.shape == (SIZE, SIZE, 3)
    assert canny[32, 32 - 15:32 - 12].max() == 255 and canny[32, 32].max() == 0  # the disc's rim, not its middle
    assert canny[:8, :8].max() == 0
    assert soft.std() > 0  # HED (random weights from the local folder) ran and drew something


def test_size_is_rounded_to_the_model_multiple_and_reported(diffuse):
    odd = np.full((45, 61, 3), 128, np.uint8)
    out = diffuse(parse_params(DiffuseParams, {"mode": "img2img", "steps": 2, "strength": 0.5}), image=odd)
    assert out.requested_size == (61, 45) and out.size == round_size(61, 45) == (64, 48)
    assert out.image.shape == (48, 64, 3)
    assert any("61x45 rounded to 64x48" in n for n in out.notes)


def test_progress_every_step_and_cancel_within_one_step(diffuse, registry, frame):
    steps = []
    diffuse(params(steps=3), image=frame, on_step=lambda s, t: steps.append((s, t)))
    assert steps == [(1, 3), (2, 3), (3, 3)]

    unet = load_base(registry, "checkpoint", None, "cpu", torch.float32, "none").pipe.unet
    calls = []
    hook = unet.register_forward_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(Cancelled):
            diffuse(params(steps=6), image=frame, on_step=lambda s, t: None, is_cancelled=lambda: len(calls) >= 1)
    finally:
        hook.remove()
    assert len(calls) == 1  # cancelled after step 1: step 2 never ran


def test_bad_inputs_fail_early_with_the_field_and_the_fix(diffuse, frame):
    with pytest.raises(ParamError, match="sampler: unknown sampler 'Euler b'; choose one of Euler a, Euler"):
        params(sampler="Euler b")
    with pytest.raises(ParamError, match=r"controls\[0\].type: 'hed' is not accepted; choose one of depth, normal"):
        params(controls=[{"type": "hed"}])
    with pytest.raises(ParamError, match="start .* must be below end"):
        params(controls=[{"type": "depth", "start": 0.6, "end": 0.4}])
    with pytest.raises(ParamError, match="strength: 0.01 x 20 steps leaves no denoising step"):
        parse_params(DiffuseParams, {"strength": 0.01})
    with pytest.raises(ParamError, match="mode: img2img needs the frame"):
        diffuse(parse_params(DiffuseParams, {"steps": 2}), image=None)
    with pytest.raises(ParamError, match="no 'segmentation' map was supplied and no annotator"):
        diffuse(params(controls=[{"type": "segmentation"}]), image=frame)
    with pytest.raises(ParamError, match="dtype: fp16 needs a GPU"):
        diffuse(params(dtype="fp16"), image=frame)


def test_a_missing_model_fails_with_the_model_the_key_and_the_fix(tiny_models, frame, tmp_path):
    config = {"models": dict(tiny_models["models"])}
    config["models"]["controlnet.depth"] = {"path": str(tmp_path / "no-such-controlnet")}
    config["models"]["lora"] = {"ink": {"id": "someone/ink-lora", "filename": "ink.safetensors"}}
    config["cache_dir"] = str(tmp_path / "empty-hub")
    broken = DiffusePipeline(ModelRegistry.from_dict(config))
    with pytest.raises(ModelMissing) as err:
        broken(params(controls=[{"type": "depth"}]), image=frame, maps={"depth": frame})
    assert err.value.code == "model_missing"
    assert "'controlnet.depth'" in str(err.value) and "no-such-controlnet" in str(err.value)
    with pytest.raises(ModelMissing, match=r"huggingface-cli download someone/ink-lora ink.safetensors"):
        broken(params(loras=[{"name": "ink"}]), image=frame)


def test_pipelines_stay_warm_between_calls(diffuse, registry, frame):
    diffuse(params(), image=frame)
    base = load_base(registry, "checkpoint", None, "cpu", torch.float32, "none")
    diffuse(params(sampler="DDIM", seed=4, controls=[{"type": "depth"}]), image=frame, maps={"depth": frame})
    assert load_base(registry, "checkpoint", None, "cpu", torch.float32, "none") is base
