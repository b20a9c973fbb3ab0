"""The stylize compositor: the diffused sequence replaces the chosen object's pixels only, grown,
feathered, blended and weighted as asked."""

from __future__ import annotations

import numpy as np
import pytest
from scene_fixtures import add_sun, add_wall, box, empty_scene, front_camera, make_take, render_image, solid

from blender_addon.scene.composite import CompositeError, build_stylize_compositor

SIZE = 64
PX_PER_M = SIZE / 5.0


def pixel(x, z):
    return int((3.5 - z) * PX_PER_M), int((x + 2.5) * PX_PER_M)


def scene_with_two_boxes(tmp_path):
    scene = empty_scene((SIZE, SIZE), samples=4)
    front_camera(scene)
    add_wall(scene, y=1.0)
    add_sun(scene, (0.2, 1.0, -0.4), energy=3.0)
    hero = box(scene, "Hero", (-1.0, 0.0, 1.0), 1.0)
    other = box(scene, "Other", (1.0, 0.0, 1.0), 1.0)
    colours = {1: (255, 0, 0), 2: (0, 0, 255)}
    make_take(tmp_path / "diffused", 2, SIZE, SIZE, colour=lambda f: solid(SIZE, SIZE, colours[f]))
    base = render_image(scene, tmp_path / "base.exr")
    return scene, hero, other, base


def test_the_diffused_image_replaces_only_the_masked_object(tmp_path):
    scene, hero, other, base = scene_with_two_boxes(tmp_path)
    build_stylize_compositor(scene, tmp_path / "diffused", [hero])
    out = render_image(scene, tmp_path / "mix.exr")

    np.testing.assert_allclose(out[pixel(-1.0, 1.0)], [1, 0, 0], atol=0.01)  # the hero shows frame 1
    np.testing.assert_allclose(out[pixel(1.0, 1.0)], base[pixel(1.0, 1.0)], atol=0.01)  # the other box
    np.testing.assert_allclose(out[pixel(0.0, 2.5)], base[pixel(0.0, 2.5)], atol=0.01)  # the wall
    edge_outside = pixel(-1.5 - 2.5 / PX_PER_M, 1.0)  # 2.5 px left of the hero's edge
    np.testing.assert_allclose(out[edge_outside], base[edge_outside], atol=0.01)

    scene.frame_set(2)
    np.testing.assert_allclose(render_image(scene, tmp_path / "f2.exr")[pixel(-1.0, 1.0)], [0, 0, 1], atol=0.01)


def test_grow_feather_blend_and_factor(tmp_path):
    scene, hero, other, base = scene_with_two_boxes(tmp_path)
    edge_outside = pixel(-1.5 - 2.5 / PX_PER_M, 1.0)
    centre = pixel(-1.0, 1.0)

    build_stylize_compositor(scene, tmp_path / "diffused", [hero], grow=4)
    grown = render_image(scene, tmp_path / "grow.exr")
    np.testing.assert_allclose(grown[edge_outside], [1, 0, 0], atol=0.01)  # the grown mask reaches it

    build_stylize_compositor(scene, tmp_path / "diffused", [hero], feather=6)
    soft = render_image(scene, tmp_path / "soft.exr")
    assert 0.02 < soft[edge_outside][0] - base[edge_outside][0] < 0.9  # part way: a soft edge

    build_stylize_compositor(scene, tmp_path / "diffused", [hero], factor=0.5)
    half = render_image(scene, tmp_path / "half.exr")
    np.testing.assert_allclose(half[centre], 0.5 * base[centre] + 0.5 * np.array([1, 0, 0]), atol=0.01)

    build_stylize_compositor(scene, tmp_path / "diffused", [hero], blend="MULTIPLY")
    multiplied = render_image(scene, tmp_path / "mul.exr")
    np.testing.assert_allclose(multiplied[centre], base[centre] * [1, 0, 0], atol=0.01)


def test_bad_requests_name_the_fix(tmp_path):
    scene, hero, other, base = scene_with_two_boxes(tmp_path)
    with pytest.raises(CompositeError, match="accepted"):
        build_stylize_compositor(scene, tmp_path / "diffused", [hero], blend="PLUS")
    with pytest.raises(CompositeError, match="no objects"):
        build_stylize_compositor(scene, tmp_path / "diffused", [])
    with pytest.raises(CompositeError, match="factor"):
        build_stylize_compositor(scene, tmp_path / "diffused", [hero], factor=2)
