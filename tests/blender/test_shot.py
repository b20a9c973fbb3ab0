"""Final shot settings, depth of field on a card, dolly with shake and flashing light."""

from __future__ import annotations

import numpy as np
import pytest
from scene_fixtures import empty_scene, front_camera, make_take, render_passes, rgb, solid

import bpy
from mathutils import Vector
from blender_addon import compat
from blender_addon.scene.cards import make_card
from blender_addon.scene.shot import ShotError, dolly_back, flashing_light, focus_on, setup_final_render


def stripes(frame):
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, ::4] = 255
    image[:, 1::4] = 255
    return image


def sharpness(image, rows, cols):
    profile = image[rows, cols].mean(axis=(0, 2))  # averaging the rows cancels the sampling noise
    return np.abs(np.diff(profile)).mean()


def test_final_render_is_4k_with_denoising():
    scene = empty_scene()
    setup_final_render(scene, samples=128)
    render = scene.render
    assert (render.resolution_x, render.resolution_y, render.resolution_percentage) == (3840, 2160, 100)
    assert scene.render.engine == "CYCLES" and scene.cycles.samples == 128 and scene.cycles.use_denoising
    setup_final_render(scene, engine="BLENDER_EEVEE", samples=64)
    assert scene.render.engine == compat.EEVEE and scene.eevee.taa_render_samples == 64
    with pytest.raises(ShotError, match="accepted"):
        setup_final_render(scene, engine="POVRAY")


def test_without_openimagedenoise_the_final_render_changes_nothing_and_says_why(monkeypatch):
    scene = empty_scene()
    before = (scene.render.resolution_x, scene.render.resolution_y, scene.render.engine, scene.cycles.samples,
              scene.cycles.use_denoising)
    # a build without OpenImageDenoise (the official wheels have it, so the probe's answer is replaced)
    monkeypatch.setattr("blender_addon.scene.shot.oidn_available", lambda: False)
    with pytest.raises(ShotError, match="OpenImageDenoise.*Denoise off"):
        setup_final_render(scene, samples=256)
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.engine, scene.cycles.samples,
            scene.cycles.use_denoising) == before
    setup_final_render(scene, width=320, height=240, samples=4, denoise=False)  # without denoising it works
    assert scene.render.resolution_x == 320 and not scene.cycles.use_denoising


def test_depth_of_field_focuses_on_the_chosen_card(tmp_path):
    scene = empty_scene((96, 48), samples=24)
    camera = front_camera(scene, distance=3.0, height=0.5, ortho_scale=None)
    camera.data.lens = 30
    make_take(tmp_path / "take", 1, 32, 32, colour=stripes)
    near = make_card(tmp_path / "take", height=0.8, location=(-0.45, -1.0, 0.1), lit=0.0, name="Near")
    far = make_card(tmp_path / "take", height=0.8 * 2.5, location=(1.6, 3.0, 0.5 - 1.0), lit=0.0, name="Far")
    # where each card shows: left half (near card), right half (far card)
    left, right = (slice(14, 34), slice(14, 34)), (slice(14, 34), slice(62, 82))

    focus = focus_on(camera, near, fstop=0.2)
    bpy.context.view_layer.update()
    centre = near.location + Vector((0.0, 0.0, 0.4))  # a flat card 0.8 m tall standing there
    assert (focus.matrix_world.translation - centre).length < 1e-4  # the card's middle, not its feet
    assert camera.data.dof.use_dof and camera.data.dof.focus_object == focus
    on_near = rgb(render_passes(scene, tmp_path / "a.exr"))
    focus_on(camera, far, fstop=0.2)
    on_far = rgb(render_passes(scene, tmp_path / "b.exr"))

    assert sharpness(on_near, *left) > 2 * sharpness(on_far, *left)
    assert sharpness(on_far, *right) > 2 * sharpness(on_near, *right)


def test_dolly_moves_back_along_the_view_with_a_small_shake():
    scene = empty_scene()
    camera = front_camera(scene, distance=4.0, height=1.5, ortho_scale=None)
    dolly_back(camera, frame_start=1, frame_end=101, distance=2.0, shake=0.0, shake_degrees=0.0)
    scene.frame_set(101)
    assert tuple(camera.matrix_world.translation) == pytest.approx((0.0, -6.0, 1.5), abs=1e-5)

    path = []
    for frame in range(1, 102, 5):
        scene.frame_set(frame)
        path.append(camera.matrix_world.translation.copy())
    scene.frame_set(1)
    dolly_back(camera, frame_start=1, frame_end=101, distance=2.0, shake=0.02, shake_degrees=0.5)
    deviations = []
    for i, frame in enumerate(range(1, 102, 5)):
        scene.frame_set(frame)
        deviations.append((camera.matrix_world.translation - path[i]).length)
    assert 0.002 < max(deviations) <= 0.02 * np.sqrt(3) + 1e-6
    assert np.std(deviations) > 0  # it moves, not a constant offset


def test_flashing_light_flashes_and_changes_colour(tmp_path):
    scene = empty_scene((16, 16), samples=2)
    front_camera(scene)
    make_take(tmp_path / "take", 1, 8, 8, colour=lambda f: solid(8, 8, (200, 200, 200)))
    make_card(tmp_path / "take", height=2.0, location=(0, 0, 0))
    light = flashing_light(scene, location=(0, -2, 1), colours=[(1, 0, 0), (0, 0, 1)], energy=200,
                           frame_start=1, frame_end=48, period=12, on_frames=3)
    seen = {}
    for frame in (1, 3, 4, 13):
        scene.frame_set(frame)
        seen[frame] = (light.data.energy, tuple(light.data.color))
        seen[frame] += (rgb(render_passes(scene, tmp_path / f"{frame}.exr"))[8, 8],)
    assert seen[1][0] == 200 and seen[3][0] == 200 and seen[4][0] == 0 and seen[13][0] == 200
    assert seen[1][1] == (1, 0, 0) and seen[13][1] == (0, 0, 1)
    red_flash, dark, blue_flash = seen[1][2], seen[4][2], seen[13][2]
    assert dark.max() < 0.01 and red_flash[0] > 0.1 and red_flash[2] < 0.01 and blue_flash[2] > 0.1
