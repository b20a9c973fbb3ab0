"""Control passes rendered with Cycles into a take, read back and checked against the scene."""

from __future__ import annotations

import numpy as np
import pytest
from scene_fixtures import add_wall, box, empty_scene, front_camera

import bpy
from backend.ipc.take import Take
from blender_addon.scene.frames import read_frame
from backend.ipc.imagefiles import read_exr
from blender_addon.scene.passes import ADE20K, PassError, render_passes

W, H = 96, 64


def stage(scene):
    """Camera 5 m in front of the origin at height 1; a wall 8 m away; three boxes 4.5 m away."""
    camera = front_camera(scene, distance=5.0, height=1.0, ortho_scale=None)
    camera.data.lens = 35
    wall = add_wall(scene, y=3.0)
    wall["stage_tag"] = "wall"
    person = box(scene, "Person", (-1.2, 0.0, 1.0), 1.0, tag="person")
    prop = box(scene, "Prop", (0.3, 0.0, 1.0), 1.0, tag="lamp post")
    untagged = box(scene, "Untagged", (1.6, 0.0, 1.0), 0.8)
    return camera, wall, person, prop, untagged


def pixel_of(scene, camera, point):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    ndc = world_to_camera_view(scene, camera, Vector(point))
    return int((1 - ndc.y) * H), int(ndc.x * W)


def test_depth_normals_segmentation_and_lines(tmp_path):
    scene = empty_scene((W, H), samples=2)
    camera, *_ = stage(scene)
    scene.view_layers[0].use_pass_z = False  # the renderer must switch it on and back off
    take = render_passes(tmp_path / "take", frame_start=1, frame_end=1,
                         layers=("color", "depth", "normal", "segmentation", "lineart"))

    assert take.missing_frames() == []
    reopened = Take.open(tmp_path / "take")
    assert (reopened.info.width, reopened.info.height) == (W, H)
    depth = read_exr(take.path("depth", 1))["Y"]
    assert depth.shape == (H, W)

    # planar distance along the camera axis, also off the image centre
    for point, expected in [((-2.5, 3.0, 2.2), 8.0), ((2.8, 3.0, -0.1), 8.0), ((-1.2, -0.5, 1.0), 4.5),
                            ((0.3, -0.5, 1.3), 4.5), ((1.6, -0.4, 0.8), 4.6)]:
        assert depth[pixel_of(scene, camera, point)] == pytest.approx(expected, rel=0.01), point

    seg = read_frame(take, "segmentation", 1).astype(int)
    palette = reopened.info.params["segmentation_palette"]
    assert palette["person"] == list(ADE20K["person"]) and palette["wall"] == list(ADE20K["wall"])
    assert sorted(palette) == ["lamp post", "person", "wall"]
    for point, tag in [((-1.2, -0.5, 1.0), "person"), ((0.3, -0.5, 1.0), "lamp post"), ((-2.5, 3.0, 2.2), "wall")]:
        assert list(seg[pixel_of(scene, camera, point)]) == palette[tag], tag
    assert list(seg[pixel_of(scene, camera, (1.6, -0.4, 0.8))]) == [0, 0, 0]  # untagged object

    normal = read_frame(take, "normal", 1) / 127.5 - 1
    np.testing.assert_allclose(normal[pixel_of(scene, camera, (-1.2, -0.5, 1.0))], [0, 0, 1], atol=0.02)
    # the untagged box's left face, seen from the camera on its left, points left in camera space
    side = normal[pixel_of(scene, camera, (1.2, 0.0, 0.8))]
    np.testing.assert_allclose(side, [-1, 0, 0], atol=0.02)

    lines = read_frame(take, "lineart", 1)
    row, column = pixel_of(scene, camera, (-1.2, -0.5, 1.0))
    edge_column = pixel_of(scene, camera, (-0.7, -0.5, 1.0))[1]  # the person box's right edge
    assert lines[row, column] == 0
    assert lines[row, edge_column - 1: edge_column + 2].max() == 255

    colour = read_frame(take, "color", 1)
    assert colour.shape == (H, W, 3) and colour.dtype == np.uint8
    assert scene.view_layers[0].use_pass_z is False  # the scene is left as it was
    assert bpy.data.objects["Person"].pass_index == 0


def test_png16_depth_matches_known_distances(tmp_path):
    scene = empty_scene((W, H), samples=1)
    camera, *_ = stage(scene)
    scene.render.resolution_x, scene.render.resolution_y = 2 * W, 2 * H  # the final shot's size
    take = render_passes(tmp_path / "take", frame_start=3, frame_end=4, layers=("depth",),
                         depth_format="png16", near=1.0, far=20.0, size=(W, H))
    layer = take.info.layers["depth"]
    assert take.missing_frames() == [] and list(take.info.frames) == [3, 4]
    assert read_frame(take, "depth", 3).shape == (H, W) and scene.render.resolution_x == 2 * W
    metres = read_frame(take, "depth", 4)
    assert (layer.near, layer.far) == (1.0, 20.0)
    assert metres[pixel_of(scene, camera, (-2.5, 3.0, 2.2))] == pytest.approx(8.0, rel=0.01)
    assert metres[pixel_of(scene, camera, (-1.2, -0.5, 1.0))] == pytest.approx(4.5, rel=0.01)


def test_bad_requests_name_the_fix(tmp_path):
    scene = empty_scene((W, H))
    with pytest.raises(PassError, match="camera"):
        render_passes(tmp_path / "a")
    front_camera(scene)
    with pytest.raises(PassError, match="accepted"):
        render_passes(tmp_path / "b", layers=("depth", "albedo"))
    with pytest.raises(PassError, match="depth_format"):
        render_passes(tmp_path / "c", depth_format="tiff")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()  # nothing half-made


def test_a_cards_matte_cuts_its_passes(tmp_path):
    from scene_fixtures import make_take, solid

    from blender_addon.scene.cards import make_card

    scene = empty_scene((W, H), samples=1)
    camera = front_camera(scene, distance=5.0, height=1.0, ortho_scale=None)
    wall = add_wall(scene, y=3.0)
    wall["stage_tag"] = "wall"
    half = np.zeros((16, 16), np.float32)
    half[:, 8:] = 1.0  # the card's right half is the person, its left half is empty
    make_take(tmp_path / "footage", 1, 16, 16, colour=lambda f: solid(16, 16, (200, 150, 100)), alpha=lambda f: half)
    make_card(tmp_path / "footage", height=2.0, location=(0, 0, 0), displace="NONE")
    take = render_passes(tmp_path / "take", frame_start=1, frame_end=1, layers=("depth", "segmentation"))

    seg, depth = read_frame(take, "segmentation", 1), read_frame(take, "depth", 1)
    person, empty = pixel_of(scene, camera, (0.5, 0.0, 1.0)), pixel_of(scene, camera, (-0.5, 0.0, 1.0))
    assert list(seg[person]) == list(ADE20K["person"]) and depth[person] == pytest.approx(5.0, rel=0.01)
    assert list(seg[empty]) == list(ADE20K["wall"]) and depth[empty] == pytest.approx(8.0, rel=0.01)


def test_frames_read_back_what_was_written(tmp_path):
    from backend.ipc.take import Layer, TakeInfo
    from backend.ipc.imagefiles import exr_bytes, png_bytes

    layers = {"color": Layer("png8"), "alpha": Layer("png8"), "depth": Layer("png16", near=2.0, far=4.0),
              "metric": Layer("exr")}
    take = Take.create(tmp_path / "t", TakeInfo(frame_start=1, frame_end=1, width=5, height=3, layers=layers))
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (3, 5), dtype=np.uint8)
    depth16 = rng.integers(0, 65536, (3, 5), dtype=np.uint16)
    metric = rng.random((3, 5), dtype=np.float32) * 10
    take.write_file("color", 1, png_bytes(colour))
    take.write_file("alpha", 1, png_bytes(alpha))
    take.write_file("depth", 1, png_bytes(depth16))
    take.write_file("metric", 1, exr_bytes({"Y": metric}))
    np.testing.assert_array_equal(read_frame(take, "color", 1), colour)
    np.testing.assert_array_equal(read_frame(take, "alpha", 1), alpha)
    np.testing.assert_allclose(read_frame(take, "depth", 1), 2.0 + depth16 / 65535 * 2.0, atol=1e-5)
    np.testing.assert_array_equal(read_frame(take, "metric", 1), metric)


def test_a_tagged_material_colours_its_faces(tmp_path):
    scene = empty_scene((W, H), samples=1)
    camera, wall, person, prop, untagged = stage(scene)
    untagged["stage_tag"] = "car"
    plain, glass = bpy.data.materials.new("Body"), bpy.data.materials.new("Glass")
    glass["stage_tag"] = "window"
    untagged.data.materials.append(plain)
    untagged.data.materials.append(glass)
    untagged.data.polygons[2].material_index = 1  # the face toward the camera
    scene.frame_set(1)
    take = render_passes(tmp_path / "take", frame_start=2, frame_end=2, layers=("segmentation",))

    seg = read_frame(take, "segmentation", 2)
    assert list(seg[pixel_of(scene, camera, (1.6, -0.4, 0.8))]) == list(ADE20K["window"])
    assert list(seg[pixel_of(scene, camera, (1.2, 0.0, 0.8))]) == list(ADE20K["car"])  # its side face
    assert list(seg[pixel_of(scene, camera, (-1.2, -0.5, 1.0))]) == list(ADE20K["person"])
    assert glass.pass_index == 0 and scene.frame_current == 1  # settings and frame put back


def test_freestyle_line_art(tmp_path):
    scene = empty_scene((W, H), samples=1)
    camera, *_ = stage(scene)
    take = render_passes(tmp_path / "take", frame_start=1, frame_end=1, layers=("lineart",), lineart="FREESTYLE")

    lines = read_frame(take, "lineart", 1)
    row, column = pixel_of(scene, camera, (-1.2, -0.5, 1.0))
    edge_column = pixel_of(scene, camera, (-1.7, -0.5, 1.0))[1]  # the person box's left edge
    assert lines[row, column] == 0 and lines[row, edge_column - 1: edge_column + 2].max() > 200
    assert 0.01 < (lines > 128).mean() < 0.2  # lines, not fills
    assert Take.open(tmp_path / "take").info.params["lineart"] == "FREESTYLE"
    line_sets = scene.view_layers[0].freestyle_settings.linesets
    assert not scene.render.use_freestyle and [ls.linestyle for ls in line_sets] == [None]  # as it was
    assert not bpy.data.linestyles  # the temporary line style is gone

    line_sets.remove(line_sets[0])  # a view layer without line sets gets a temporary one
    again = render_passes(tmp_path / "again", frame_start=1, frame_end=1, layers=("lineart",), lineart="FREESTYLE")
    np.testing.assert_array_equal(read_frame(again, "lineart", 1), lines)
    assert len(line_sets) == 0 and not bpy.data.linestyles
