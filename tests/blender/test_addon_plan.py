"""The add-on's bpy-free logic: frames, keyframes, job plans, the local backend's command line."""

from __future__ import annotations

import addon_fixtures  # noqa: F401  (puts the repository on the path)
import pytest

from blender_addon.jobs.frames import FramesError, keyframes, numbered_images, sequence_folder
from blender_addon.jobs.local_backend import LaunchError, backend_argv
from blender_addon.jobs.plan import PlanError, diffuse_params, footage_plan, matte_params


def test_keyframes_every_interval_always_include_the_last_frame():
    assert keyframes(list(range(1, 21)), "INTERVAL", 8) == [1, 9, 17, 20]
    assert keyframes(list(range(1, 18)), "INTERVAL", 8) == [1, 9, 17]
    assert keyframes([5, 6, 7], "ENDS") == [5, 7]
    assert keyframes([3, 1, 2], "ALL") == [1, 2, 3]
    with pytest.raises(FramesError, match="interval must be 1 or more"):
        keyframes([1, 2], "INTERVAL", 0)


def test_numbered_images_take_the_trailing_digits_and_refuse_two_files_for_one_frame(tmp_path):
    for name in ("shot_0002.png", "shot_0010.png", "notes.txt", "cover.png"):
        (tmp_path / name).write_bytes(b"")
    assert {f: p.name for f, p in numbered_images(tmp_path).items()} == {2: "shot_0002.png", 10: "shot_0010.png"}
    (tmp_path / "other_10.jpg").write_bytes(b"")
    with pytest.raises(FramesError, match="both frame 10"):
        numbered_images(tmp_path)


def test_a_video_given_as_an_image_sequence_gets_a_message_that_says_what_to_do(tmp_path):
    with pytest.raises(FramesError, match="give it as the footage itself"):
        sequence_folder(tmp_path / "take.mp4")


def test_footage_plan_names_the_missing_stage_and_the_setting_to_change():
    settings = {"use_matte": True, "use_depth": True}
    with pytest.raises(PlanError, match=r"no 'depth' stage .*untick Depth"):
        footage_plan(settings, [1, 2, 3], ["matte"])
    plan = footage_plan(settings, [1, 2, 3], ["matte", "depth"])
    assert [j.stage for j in plan.jobs] == ["matte", "depth"]
    assert plan.layer_sources() == {"color": "matte", "alpha": "matte", "depth": "depth"}


def test_a_filmed_shadow_asks_the_matte_for_its_shadow_layer_and_needs_the_matte():
    assert "shadow" not in matte_params({"card_shadow": "BLENDER"})
    for mode in ("FILMED", "BOTH"):
        plan = footage_plan({"use_matte": True, "card_shadow": mode}, [1, 2], ["matte"])
        assert plan.jobs[0].params["shadow"] is True
        assert plan.layer_sources() == {"color": "matte", "alpha": "matte", "shadow": "matte"}
    with pytest.raises(PlanError, match="tick Matte .* or set Shadow to Blender's"):
        footage_plan({"use_matte": False, "use_depth": True, "card_shadow": "FILMED"}, [1], None)


def test_a_clean_plate_goes_to_the_matte_as_a_side_input():
    plan = footage_plan({"use_matte": True, "clean_plate": "/shots/plate.png"}, [1, 2], ["matte"])
    assert plan.jobs[0].params["key"]["clean_plate"] is True
    assert plan.jobs[0].sides == {"clean_plate": "/shots/plate.png"}
    plain = footage_plan({"use_matte": True, "clean_plate": ""}, [1, 2], ["matte"]).jobs[0]
    assert "clean_plate" not in plain.params["key"] and plain.sides == {}


def test_relight_adds_normal_and_albedo_jobs_and_keeps_a_diffused_colour():
    settings = {"use_matte": True, "use_relight": True}
    with pytest.raises(PlanError, match=r"no 'normal' stage .*untick Relight"):
        footage_plan(settings, [1, 2], ["matte"])
    plan = footage_plan(settings, [1, 2], ["matte", "normal", "albedo"])
    assert plan.layer_sources() == {"color": "matte", "alpha": "matte", "normal": "normal", "albedo": "albedo"}
    painted = footage_plan({**settings, "use_diffusion": True, "prompt": "ink", "keyframe_mode": "ALL"}, [1, 2], None)
    assert "albedo" not in painted.layer_sources() and "normal" in painted.layer_sources()
    assert "no albedo layer" in painted.notes[0]


def test_a_taller_frame_adds_an_upscale_job_reading_the_colour_matte_and_albedo():
    settings = {"use_matte": True, "use_relight": True}
    stages = ["matte", "normal", "albedo", "upscale"]
    assert "upscale" not in footage_plan(settings, [1], stages, heights=(1080, 720)).layer_sources().values()
    plan = footage_plan(settings, [1], stages, heights=(480, 2160))
    upscale = plan.jobs[-1]
    assert upscale.reads == ("matte", "albedo") and upscale.provides == ("color", "alpha", "albedo")
    assert upscale.params == {"method": "resample", "scale": 4, "layers": ["albedo"]}
    assert plan.layer_sources() == {"color": "upscale", "alpha": "upscale", "albedo": "upscale", "normal": "normal"}
    assert "PREVIEW" in plan.notes[-1]
    model = footage_plan({**settings, "texture_upscale": "MODEL"}, [1], stages, heights=(1080, 2160)).jobs[-1]
    assert model.params == {"method": "model", "layers": ["albedo"]}
    assert len(footage_plan({**settings, "texture_upscale": "OFF"}, [1], stages, heights=(480, 2160)).jobs) == 3
    with pytest.raises(PlanError, match="Textures to Off"):
        footage_plan(settings, [1], ["matte", "normal", "albedo"], heights=(480, 2160))


def test_diffusion_supplies_the_colour_over_the_matte():
    settings = {"use_matte": True, "use_diffusion": True, "prompt": "a knight in armour", "seed": 7,
                "keyframe_mode": "ALL"}
    plan = footage_plan(settings, [1, 2], None)
    assert plan.layer_sources() == {"color": "diffuse", "alpha": "matte"}
    assert plan.jobs[1].params["seed"] == 7


def test_keyframes_are_diffused_in_grids_and_propagated_in_one_job():
    settings = {"use_matte": False, "use_diffusion": True, "prompt": "ink", "keyframe_mode": "INTERVAL",
                "keyframe_interval": 4, "stability": 0.75}
    frames = list(range(1, 11))
    (propagate,) = footage_plan(settings, frames, ["diffuse", "propagate"]).jobs
    assert propagate.stage == "propagate" and propagate.frames == frames
    assert propagate.params["keyframes_from"] == "diffuse" and propagate.params["diffuse"]["prompt"] == "ink"
    assert propagate.params["keyframes"] == [1, 5, 9, 10] and propagate.params["stability"] == 0.75
    # a backend without the propagate stage: every frame is diffused, and the artist is told
    (alone,) = footage_plan(settings, frames, ["diffuse"]).jobs
    assert (alone.stage, alone.frames) == ("diffuse", frames)
    assert "no propagate stage" in footage_plan(settings, frames, ["diffuse"]).notes[0]


def test_diffuse_params_carry_the_units_and_loras_that_are_enabled():
    params = diffuse_params({
        "prompt": "oil painting", "denoise": 0.4, "steps": 3, "cfg": 5.0, "seed": 1, "sampler": "DDIM",
        "controls": [{"enabled": True, "type": "depth", "weight": 0.8, "start": 0.0, "end": 0.5, "source": "map"},
                     {"enabled": False, "type": "canny", "weight": 1.0, "start": 0.0, "end": 1.0, "source": "auto"}],
        "loras": [{"enabled": True, "name": "ink", "strength": 0.6}, {"enabled": True, "name": "", "strength": 1}],
    })
    assert params["strength"] == 0.4 and params["sampler"] == "DDIM" and params["mode"] == "img2img"
    assert params["controls"] == [{"type": "depth", "weight": 0.8, "start": 0.0, "end": 0.5, "source": "map"}]
    assert params["loras"] == [{"name": "ink", "strength": 0.6}]
    with pytest.raises(PlanError, match="prompt is empty"):
        diffuse_params({"prompt": "  "})
    with pytest.raises(PlanError, match="start 0.9 is after end 0.2"):
        diffuse_params({"prompt": "x", "controls": [{"type": "depth", "weight": 1, "start": 0.9, "end": 0.2}]})


def test_backend_command_fills_the_template_and_drops_an_unset_device(tmp_path):
    python = tmp_path / "python"
    python.write_text("")
    argv = backend_argv(str(python), "-m backend.cli serve --bind {bind} --store {store} --device {device}",
                        bind="tcp://127.0.0.1:6000", store="/data/store", device="", models="/m.json")
    assert argv == [str(python), "-m", "backend.cli", "serve", "--bind", "tcp://127.0.0.1:6000", "--store",
                    "/data/store", "--models", "/m.json"]
    with pytest.raises(LaunchError, match="Backend Python .* does not exist"):
        backend_argv(str(tmp_path / "nope"), "-m x", bind="b", store="s")
    with pytest.raises(LaunchError, match="use {bind}"):
        backend_argv(str(python), "--bind {port}", bind="b", store="s")


def test_only_the_passes_the_enabled_units_use_are_rendered_and_sent():
    from blender_addon.jobs.plan import pass_layers

    units = [{"enabled": True, "type": "openpose", "source": "auto"},
             {"enabled": True, "type": "depth", "source": "map"},
             {"enabled": False, "type": "normal", "source": "map"},
             {"enabled": True, "type": "segmentation", "source": "annotator"},
             {"enabled": True, "type": "canny", "source": "auto"}]
    assert pass_layers({"controls": units}) == ("color", "pose", "depth")
    with pytest.raises(PlanError, match="renders no canny pass"):
        pass_layers({"controls": [{"enabled": True, "type": "canny", "source": "map"}]})


def test_a_video_engine_makes_every_frame_in_one_propagate_job():
    settings = {"use_matte": False, "use_diffusion": True, "prompt": "ink figure", "seed": 4, "engine": "VACE",
                "keyframe_mode": "INTERVAL", "keyframe_interval": 8, "steps": 12, "video_size": 500}
    plan = footage_plan(settings, list(range(1, 21)), ["matte", "diffuse", "propagate"])
    [job] = plan.jobs
    assert job.stage == "propagate" and job.frames == list(range(1, 21))
    assert job.params["engine"] == "vace" and job.params["keyframes_from"] == "diffuse"
    assert job.params["keyframes"] == [1, 9, 17, 20]
    assert job.params["video"] == {"prompt": "ink figure", "negative_prompt": "", "seed": 4, "steps": 12, "size": 496}
    animate = footage_plan({**settings, "engine": "ANIMATE"}, list(range(1, 21)), None).jobs[0]
    assert animate.params["engine"] == "animate"
    with pytest.raises(PlanError, match=r"no 'propagate' stage .*Engine to Keyframes"):
        footage_plan(settings, [1, 2, 3], ["matte", "diffuse"])


def test_a_character_image_is_the_video_engines_reference_side_input():
    settings = {"use_matte": False, "use_diffusion": True, "prompt": "ink figure", "engine": "ANIMATE",
                "keyframe_mode": "INTERVAL", "keyframe_interval": 8, "video_size": 64}
    [job] = footage_plan({**settings, "character_image": "/shots/hero.png"}, list(range(1, 9)), None).jobs
    assert job.params["video"]["reference"] == "side" and job.sides == {"reference": "/shots/hero.png"}
    [plain] = footage_plan({**settings, "character_image": ""}, list(range(1, 9)), None).jobs
    assert "reference" not in plain.params["video"] and plain.sides == {}
    [keyed] = footage_plan({**settings, "engine": "KEYFRAMES", "character_image": "/shots/hero.png"},
                           list(range(1, 9)), None).jobs
    assert keyed.sides == {}, "Keyframes + flow has no reference image"


def test_the_shot_runner_uses_a_video_engine_only_when_asked_and_merges_its_settings():
    from blender_addon.headless.engines import choose_engines
    from blender_addon.headless.runner import expand_dotted, merged

    probed = []
    offered = {"matte", "propagate", "preview_depth"}
    auto = choose_engines(offered, lambda stage: probed.append(stage), ("stylize",))
    assert auto["stylize"].engine.key == "propagate" and auto["stylize"].engine.preview
    forced = choose_engines(offered, lambda stage: probed.append(stage), ("stylize",), {"stylize": "vace"})
    engine = forced["stylize"].engine
    assert (engine.stage, engine.key, engine.preview) == ("propagate", "vace", False)
    params = merged(expand_dotted(dict(engine.params)), {"video": {"steps": "2"}, "engine": "vace"})
    assert params == {"engine": "vace", "video": {"pin_keyframes": False, "reference": "none", "steps": "2"}}
    animate = choose_engines(offered, lambda stage: None, ("stylize",), {"stylize": "animate"})["stylize"].engine
    assert dict(animate.params) == {"engine": "animate"}
