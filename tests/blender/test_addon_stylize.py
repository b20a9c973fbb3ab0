"""stage.stylize_scene end to end: the scene's passes rendered with Cycles, diffused by a backend running
tiny random-weight Stable Diffusion + ControlNet models (built by the diffuse tests' fixtures in the
backend's environment), brought back as a take and composited over the render through the object's mask."""

from __future__ import annotations

import math
import os

import addon_fixtures  # noqa: F401
import bpy
import numpy as np
import pytest
from addon_fixtures import backend_with_tiny_models, disable_addon, enable_addon, fresh_scene

from blender_addon import compat
from blender_addon.ipc import Take

BUILD_TINY_MODELS = """
import json, sys, torch
from pathlib import Path
torch.set_num_threads(1)
from diffuse_fixtures import build_models
root = Path(sys.argv[1])
(root / "models.json").write_text(json.dumps(build_models(root)))
"""


@pytest.fixture(scope="module")
def diffusion_backend(tmp_path_factory):
    process = backend_with_tiny_models(tmp_path_factory, BUILD_TINY_MODELS)
    yield process
    process.stop()


def small_scene():
    scene = fresh_scene((64, 48))
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 4
    scene.cycles.device = "CPU"
    scene.frame_start, scene.frame_end = 1, 2
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    camera.location = (0.0, -6.0, 1.0)
    camera.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.camera = camera
    bpy.ops.mesh.primitive_cube_add(size=1.5, location=(0.0, 0.0, 1.0))
    cube = bpy.context.active_object
    cube["stage_tag"] = "statue"
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    scene.collection.objects.link(sun)
    sun.rotation_euler = (0.6, 0.2, 0.0)
    return scene, cube


def test_stylize_diffuses_the_passes_and_composites_the_object(diffusion_backend, tmp_path):
    scene, cube = small_scene()
    enable_addon(address=diffusion_backend.url)
    try:
        settings = scene.stage
        settings.takes_dir = str(tmp_path / "takes")
        settings.prompt = "a marble statue"
        settings.steps, settings.cfg, settings.denoise, settings.seed = 2, 1.0, 0.9, 5
        bpy.ops.stage.collection_add(target="controls")
        settings.controls[0].type, settings.controls[0].source = "depth", "map"
        settings.stylize_object = cube
        settings.blend_mode, settings.blend_factor, settings.mask_grow = "MULTIPLY", 0.7, 2

        assert bpy.ops.stage.stylize_scene() == {"FINISHED"}

        passes = Take.open(tmp_path / "takes" / "stylized" / "passes")
        assert set(passes.info.layers) == {"color", "depth"}  # only what the depth unit needs
        diffused = Take.open(tmp_path / "takes" / "stylized" / "diffused")
        assert diffused.missing_frames() == [] and list(diffused.info.frames) == [1, 2]
        assert diffused.info.params["diffuse"]["controls"] == [
            {"type": "depth", "weight": 1.0, "start": 0.0, "end": 1.0, "source": "map"}]
        from blender_addon.scene.frames import read_frame

        render = read_frame(passes, "color", 1).astype(np.float32)
        styled = read_frame(diffused, "color", 1).astype(np.float32)
        assert styled.shape == render.shape
        assert np.abs(styled - render).mean() > 5.0  # the backend repainted it

        tree = compat.scene_compositor(scene)
        assert tree is not None
        images = [n.image for n in tree.nodes if n.bl_idname == "CompositorNodeImage"]
        assert images and os.path.samefile(bpy.path.abspath(images[0].filepath), diffused.path("color", 1))
        mixes = [n for n in tree.nodes if getattr(n, "blend_type", None) == "MULTIPLY"]
        assert mixes
    finally:
        disable_addon()


def test_footage_keyframes_are_diffused_and_propagated_over_the_matte(diffusion_backend, tmp_path):
    from addon_fixtures import read_alpha, write_clip

    scene = fresh_scene()
    enable_addon(address=diffusion_backend.url)
    try:
        settings = scene.stage
        settings.takes_dir = str(tmp_path / "takes")
        settings.use_diffusion, settings.prompt = True, "a bronze dancer"
        settings.steps, settings.cfg, settings.denoise, settings.seed = 2, 1.0, 0.9, 3
        settings.keyframe_mode, settings.keyframe_interval, settings.stability = "INTERVAL", 3, 0.0
        settings.texture_upscale = "OFF"  # the 48 px footage stays as it is: no upscale job in this test
        masks = write_clip(tmp_path / "clip", 5, 64, 48, seed=9)
        assert bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip")) == {"FINISHED"}

        take = Take.open(tmp_path / "takes" / "clip")
        assert take.missing_frames() == [] and set(take.info.layers) == {"color", "alpha"}
        assert take.info.params["propagate"]["keyframes"] == [1, 4, 5]
        assert take.info.params["propagate"]["keyframes_from"] == "diffuse"  # grids diffused on the backend
        jobs = sorted(p.name.split("-")[0] for p in (tmp_path / "takes" / "clip" / "jobs").iterdir())
        assert jobs == ["matte", "propagate"]  # no separate keyframe job: remote backends work alike
        from blender_addon.scene.frames import read_frame
        from blender_addon.footage import read_image

        source = read_image(tmp_path / "clip" / "clip_0002.png")["color"].astype(np.float32)
        between = read_frame(take, "color", 2).astype(np.float32)  # not a keyframe: propagated
        assert np.abs(between - source).mean() > 5.0
        alpha = read_alpha(take, 2)
        assert alpha[masks[2]].mean() > 0.9 and alpha[~masks[2]].mean() < 0.1
        assert [obj for obj in scene.objects if obj.get("stage_card")]
    finally:
        disable_addon()
