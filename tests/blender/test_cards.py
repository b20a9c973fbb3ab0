"""Character cards in real bpy, rendered with Cycles at 80×80 and read back.

The camera is orthographic on -Y (scale 5, centred at z=1), so a world point (x, z) on a card lands
on pixel column (x + 2.5) * 16, row (3.5 - z) * 16. Cards are 2 m square and stand at the origin.
"""

from __future__ import annotations

import numpy as np
import pytest
from scene_fixtures import (add_sun, add_wall, disc, empty_scene, front_camera, make_take, render_passes, rgb,
                            set_world_colour, solid)

import bpy
from mathutils import Vector
from blender_addon import compat
from blender_addon.scene.cards import CardError, make_card, set_card_lit, set_card_timing

SIZE = 80
PX_PER_M = SIZE / 5.0


def pixel(x: float, z: float) -> tuple[int, int]:
    return int((3.5 - z) * PX_PER_M), int((x + 2.5) * PX_PER_M)


def half_alpha(frame):
    a = np.zeros((32, 32), np.float32)
    a[:, 16:] = 1.0  # left half transparent, right half opaque
    return a


def red_take_before_green_world(tmp_path, frames: int, alpha):
    """A front-camera scene over a green world and a take of `frames` red 32×32 frames with matte `alpha`."""
    scene = empty_scene((SIZE, SIZE), samples=4)
    set_world_colour(scene, (0.0, 0.5, 0.0))
    front_camera(scene)
    make_take(tmp_path / "take", frames, 32, 32, colour=lambda f: solid(32, 32, (255, 0, 0)), alpha=alpha)
    return scene


def test_card_is_transparent_where_the_matte_is_zero(tmp_path):
    scene = red_take_before_green_world(tmp_path, 1, half_alpha)
    card = make_card(tmp_path / "take", height=2.0, location=(0, 0, 0), lit=0.0)

    image = rgb(render_passes(scene, tmp_path / "r.exr"))
    behind_clear_half = image[pixel(-0.5, 1.0)]
    on_opaque_half = image[pixel(0.5, 1.0)]
    np.testing.assert_allclose(behind_clear_half, [0.0, 0.5, 0.0], atol=0.02)  # the world shows through
    np.testing.assert_allclose(on_opaque_half, [1.0, 0.0, 0.0], atol=0.02)  # the footage, unlit, opaque
    assert card.dimensions.x == pytest.approx(2.0) and card.dimensions.z == pytest.approx(2.0)


def test_card_stands_on_the_location_and_faces_the_camera(tmp_path):
    scene = empty_scene()
    camera = front_camera(scene, ortho_scale=None)
    camera.location = (3.0, -3.0, 1.0)
    make_take(tmp_path / "take", 1, 48, 24, colour=lambda f: solid(48, 24, (9, 9, 9)))
    card = make_card(tmp_path / "take", height=1.5, location=(1.0, 2.0, 0.5), displace="NONE")
    bpy.context.view_layer.update()

    corners = [card.matrix_world @ v.co for v in card.data.vertices]
    assert min(c.z for c in corners) == pytest.approx(0.5)  # bottom edge on the location
    assert max(c.z for c in corners) == pytest.approx(2.0)  # 1.5 m tall
    assert card.dimensions.x == pytest.approx(3.0)  # 2:1 footage
    normal = card.matrix_world.to_3x3() @ card.data.polygons[0].normal
    to_camera = (camera.location - card.location).to_2d().normalized()
    assert normal.z == pytest.approx(0.0, abs=1e-6)  # turned about Z only
    assert normal.to_2d().normalized().dot(to_camera) == pytest.approx(1.0, abs=1e-6)


def figure_above_the_bottom(frame):
    """A figure whose feet end 8 rows above a 32-row frame's bottom; they sink 2 rows lower in frame 3."""
    a = np.zeros((32, 32), np.float32)
    a[4:24 + (2 if frame == 3 else 0), 12:20] = 1.0
    a[31, 0] = 1.0  # one stray opaque speck on the bottom row: not feet
    return a


def test_the_characters_lowest_point_stands_on_the_location_not_the_frame_edge(tmp_path):
    scene = red_take_before_green_world(tmp_path, 4, figure_above_the_bottom)
    card = make_card(tmp_path / "take", height=2.0, location=(0, 0, 0.5), lit=0.0, displace="NONE", contact=False)
    bpy.context.view_layer.update()
    corners = [card.matrix_world @ v.co for v in card.data.vertices]
    # the lowest feet over the take (frame 3: 6 empty rows below) on z = 0.5; the frame reaches 6/32 of 2 m below
    assert min(c.z for c in corners) == pytest.approx(0.5 - 2.0 * 6 / 32)
    assert card.location.z == pytest.approx(0.5)

    scene.frame_set(1)
    image = rgb(render_passes(scene, tmp_path / "r.exr"))
    # frame 1's feet end 2 rows (1/16 of 2 m) above the floor line; the figure shows above them, the world below
    np.testing.assert_allclose(image[pixel(0.0, 0.5 + 0.125 + 0.2)], [1.0, 0.0, 0.0], atol=0.05)
    np.testing.assert_allclose(image[pixel(0.0, 0.5 - 0.1)], [0.0, 0.5, 0.0], atol=0.05)

    framed = make_card(tmp_path / "take", height=2.0, location=(0, 0, 0.5), displace="NONE", stand="FRAME")
    bpy.context.view_layer.update()
    assert min((framed.matrix_world @ v.co).z for v in framed.data.vertices) == pytest.approx(0.5)
    with pytest.raises(CardError, match="stand is 'HEAD'"):
        make_card(tmp_path / "take", stand="HEAD")


def test_doubling_the_light_brightens_the_card_and_a_coloured_light_tints_it(tmp_path):
    scene = empty_scene((SIZE, SIZE), samples=4)
    front_camera(scene)
    make_take(tmp_path / "take", 1, 32, 32, colour=lambda f: solid(32, 32, (180, 180, 180)))
    make_card(tmp_path / "take", height=2.0, location=(0, 0, 0))
    sun = add_sun(scene, (0.3, 1.0, -0.3), energy=2.0)
    where = pixel(0.0, 1.0)

    base = rgb(render_passes(scene, tmp_path / "a.exr"))[where]
    sun.data.energy = 4.0
    doubled = rgb(render_passes(scene, tmp_path / "b.exr"))[where]
    sun.data.color = (1.0, 0.3, 0.3)
    tinted = rgb(render_passes(scene, tmp_path / "c.exr"))[where]

    assert base.min() > 0.05
    np.testing.assert_allclose(doubled / base, 2.0, rtol=0.05)
    assert tinted[0] / tinted[1] > 2.5 and base[0] / base[1] == pytest.approx(1.0, abs=0.05)


def test_emission_card_ignores_the_light(tmp_path):
    scene = empty_scene((SIZE, SIZE), samples=4)
    front_camera(scene)
    make_take(tmp_path / "take", 1, 32, 32, colour=lambda f: solid(32, 32, (180, 180, 180)))
    card = make_card(tmp_path / "take", height=2.0, location=(0, 0, 0))
    sun = add_sun(scene, (0.3, 1.0, -0.3), energy=2.0)
    set_card_lit(card, 0.0)
    where = pixel(0.0, 1.0)
    dim = rgb(render_passes(scene, tmp_path / "a.exr"))[where]
    sun.data.energy = 8.0
    bright = rgb(render_passes(scene, tmp_path / "b.exr"))[where]
    np.testing.assert_allclose(bright, dim, rtol=1e-3)
    np.testing.assert_allclose(dim, (180 / 255) ** 2.2, rtol=0.05)  # sRGB footage as emitted


def test_shadow_on_the_wall_has_the_shape_of_the_matte(tmp_path):
    scene = empty_scene((SIZE, SIZE), samples=4)
    front_camera(scene)
    add_wall(scene, y=1.0)
    # light travels +x and +y at 45°: the card's shadow lands 1 m to the right on the wall behind
    add_sun(scene, (1.0, 1.0, 0.0), energy=3.0)
    make_take(tmp_path / "take", 1, 32, 32, colour=lambda f: solid(32, 32, (200, 200, 200)),
              alpha=lambda f: disc(32, 32))
    make_card(tmp_path / "take", height=2.0, location=(0, 0, 0))
    image = rgb(render_passes(scene, tmp_path / "r.exr")).mean(axis=-1)

    lit_wall = image[pixel(-1.8, 1.0)]  # left of everything: no shadow can fall there
    in_disc_shadow = image[pixel(1.6, 1.0)]  # 0.6 m from the shadow's centre (1, 1), right of the card
    in_rectangle_corner = image[pixel(1.9, 1.9)]  # inside the plane's shadow rectangle, outside the disc
    assert in_disc_shadow < 0.2 * lit_wall
    assert in_rectangle_corner == pytest.approx(lit_wall, rel=0.05)


def ramp(frame):
    return np.broadcast_to(np.linspace(1.0, 3.0, 32, dtype=np.float32), (32, 32))  # near left, far right


def test_depth_ramp_displaces_the_modifier_geometry_by_depth_scale(tmp_path):
    scene = empty_scene()
    front_camera(scene)
    make_take(tmp_path / "take", 1, 32, 32, colour=lambda f: solid(32, 32, (99, 99, 99)), depth=ramp)
    card = make_card(tmp_path / "take", height=2.0, depth_scale=0.4, location=(0, 0, 0), displace="MODIFIER")

    evaluated = card.evaluated_get(bpy.context.evaluated_depsgraph_get())
    co = np.array([v.co[:] for v in evaluated.to_mesh().vertices]).reshape(32, 32, 3)  # rows × columns
    offsets = co[..., 1].mean(axis=0)  # along -Y = toward the camera, per column
    assert np.ptp(co[..., 1], axis=0).max() < 1e-4  # the ramp is constant down each column
    assert offsets[0] < offsets[-1]  # near end toward the camera (at -Y)
    assert offsets[-1] - offsets[0] == pytest.approx(0.4, rel=0.05)
    np.testing.assert_allclose(offsets, np.linspace(-0.2, 0.2, 32), atol=0.02)  # linear in between


def test_depth_ramp_displaces_the_rendered_surface_by_depth_scale(tmp_path):
    scene = empty_scene((SIZE, SIZE), samples=1)
    front_camera(scene)
    make_take(tmp_path / "take", 1, 32, 32, colour=lambda f: solid(32, 32, (99, 99, 99)), depth=ramp)
    make_card(tmp_path / "take", height=2.0, depth_scale=0.4, location=(0, 0, 0), displace="MATERIAL")
    scene.view_layers[0].use_pass_z = True
    z = render_passes(scene, tmp_path / "r.exr")["Depth.Z"]

    row = pixel(0, 1.0)[0]
    columns = np.arange(pixel(-0.8, 0)[1], pixel(0.8, 0)[1])
    u = (columns + 0.5) / PX_PER_M - 2.5 + 0.5 * 2.0  # pixel centre -> card u * 2 m
    slope = np.polyfit(u / 2.0, z[row, columns], 1)[0]  # metres of depth per card width
    assert slope == pytest.approx(0.4, rel=0.05)
    assert z[row, columns].mean() == pytest.approx(6.0, abs=0.02)  # the range's middle stays on the plane


def frame_colour(frame):
    return solid(8, 8, [(255, 0, 0), (0, 255, 0), (0, 0, 255)][frame - 1])


@pytest.mark.parametrize("extend, expected", [
    ("HOLD", {5: "red", 6: "green", 7: "blue", 9: "blue", 4: None}),
    ("LOOP", {6: "green", 8: "red", 9: "green"}),
    ("STOP", {7: "blue", 8: None}),
])
def test_frame_n_of_the_render_shows_frame_n_of_the_take(tmp_path, extend, expected):
    scene = empty_scene((16, 16), samples=1)
    set_world_colour(scene, (0.2, 0.2, 0.2))
    front_camera(scene)
    make_take(tmp_path / "take", 3, 8, 8, colour=frame_colour)
    make_card(tmp_path / "take", height=2.0, location=(0, 0, 0), lit=0.0, frame_start=5, extend=extend)
    names = {"red": [1, 0, 0], "green": [0, 1, 0], "blue": [0, 0, 1], None: [0.2, 0.2, 0.2]}
    for frame, colour in expected.items():
        scene.frame_set(frame)
        shown = rgb(render_passes(scene, tmp_path / f"{frame}.exr"))[8, 8]
        np.testing.assert_allclose(shown, names[colour], atol=0.02, err_msg=f"{extend} frame {frame}")


def test_offset_skips_take_frames(tmp_path):
    scene = empty_scene((16, 16), samples=1)
    front_camera(scene)
    make_take(tmp_path / "take", 3, 8, 8, colour=frame_colour)
    card = make_card(tmp_path / "take", height=2.0, location=(0, 0, 0), lit=0.0)
    set_card_timing(card, frame_start=1, offset=1, extend="HOLD")
    scene.frame_set(1)
    np.testing.assert_allclose(rgb(render_passes(scene, tmp_path / "a.exr"))[8, 8], [0, 1, 0], atol=0.02)


def test_bad_inputs_name_the_problem(tmp_path):
    empty_scene()
    make_take(tmp_path / "take", 2, 8, 8, colour=frame_colour)
    with pytest.raises(CardError, match="extend"):
        make_card(tmp_path / "take", extend="BOUNCE")
    with pytest.raises(CardError, match="height"):
        make_card(tmp_path / "take", height=0)
    with pytest.raises(CardError, match="offset"):
        make_card(tmp_path / "take", offset=5)
    with pytest.raises(ValueError, match="no take.json"):
        make_card(tmp_path / "nowhere")
    assert not [o for o in bpy.data.objects if o.name.startswith("Card")]  # nothing half-built


def test_a_take_missing_its_first_matte_frame_is_refused(tmp_path):
    empty_scene()
    take = make_take(tmp_path / "take", 2, 8, 8, colour=frame_colour, alpha=lambda f: np.ones((8, 8)))
    take.path("alpha", 1).unlink()
    with pytest.raises(CardError, match="alpha/0001.png"):
        make_card(tmp_path / "take")
    assert not bpy.data.objects and not bpy.data.meshes


@pytest.mark.slow  # EEVEE on software OpenGL: its first run compiles shaders (up to a minute)
def test_eevee_shows_the_matte_and_the_displacement(tmp_path):
    scene = empty_scene((SIZE, SIZE), samples=1)
    set_world_colour(scene, (0.0, 0.5, 0.0))
    front_camera(scene)
    make_take(tmp_path / "take", 1, 32, 32, colour=lambda f: solid(32, 32, (255, 0, 0)), alpha=half_alpha, depth=ramp)
    make_card(tmp_path / "take", height=2.0, depth_scale=0.4, location=(0, 0, 0), lit=0.0)
    scene.render.engine = compat.EEVEE
    scene.eevee.taa_render_samples = 1
    scene.view_layers[0].use_pass_z = True
    channels = render_passes(scene, tmp_path / "r.exr")

    image = rgb(channels)
    np.testing.assert_allclose(image[pixel(-0.5, 1.0)], [0.0, 0.5, 0.0], atol=0.02)
    np.testing.assert_allclose(image[pixel(0.5, 1.0)], [1.0, 0.0, 0.0], atol=0.02)
    row, columns = pixel(0, 1.0)[0], np.arange(pixel(0.1, 0)[1], pixel(0.9, 0)[1])
    u = ((columns + 0.5) / PX_PER_M - 2.5 + 1.0) / 2.0
    assert np.polyfit(u, channels["Depth.Z"][row, columns], 1)[0] == pytest.approx(0.4, rel=0.05)


@pytest.mark.parametrize("declared", [None, (1.0, 9.0)])
def test_metric_exr_depth_spans_depth_scale_over_its_range(tmp_path, declared):
    from backend.ipc.take import Layer, Take, TakeInfo
    from backend.ipc.imagefiles import exr_bytes, png_bytes

    empty_scene()
    near, far = declared or (None, None)
    info = TakeInfo(frame_start=1, frame_end=1, width=32, height=32,
                    layers={"color": Layer("png8"), "depth": Layer("exr", near=near, far=far)})
    take = Take.create(tmp_path / "take", info)
    take.write_file("color", 1, png_bytes(solid(32, 32, (99, 99, 99))))
    metres = np.broadcast_to(np.linspace(2.0, 6.0, 32, dtype=np.float32), (32, 32)).copy()
    take.write_file("depth", 1, exr_bytes({"Y": metres}))
    card = make_card(tmp_path / "take", height=2.0, depth_scale=0.4, location=(0, 0, 0), displace="MODIFIER")

    evaluated = card.evaluated_get(bpy.context.evaluated_depsgraph_get())
    offsets = np.array([v.co.y for v in evaluated.to_mesh().vertices]).reshape(32, 32).mean(axis=0)
    # the first frame's own range (2..6 m) spans 0.4 m; a declared 1..9 m range puts 2..6 m on half of it
    span = 0.4 if declared is None else 0.4 * 4.0 / 8.0
    assert offsets[-1] - offsets[0] == pytest.approx(span, rel=0.05)


@pytest.mark.slow
def test_eevee_shadow_follows_the_matte(tmp_path):
    scene = empty_scene((SIZE, SIZE), samples=4)
    front_camera(scene)
    add_wall(scene, y=1.0)
    add_sun(scene, (1.0, 1.0, 0.0), energy=3.0)
    make_take(tmp_path / "take", 1, 32, 32, colour=lambda f: solid(32, 32, (200, 200, 200)),
              alpha=lambda f: disc(32, 32))
    make_card(tmp_path / "take", height=2.0, location=(0, 0, 0))
    scene.render.engine = compat.EEVEE
    scene.eevee.taa_render_samples = 4
    image = rgb(render_passes(scene, tmp_path / "r.exr")).mean(axis=-1)

    lit_wall = image[pixel(-1.8, 1.0)]
    assert image[pixel(1.6, 1.0)] < 0.2 * lit_wall  # inside the disc's shadow
    assert image[pixel(1.9, 1.9)] == pytest.approx(lit_wall, rel=0.05)  # the plane's corner casts none


def test_character_height_is_the_mattes_height_and_the_frame_is_derived(tmp_path):
    """A figure filling the middle half of the frame's rows, asked to be 1.8 m tall, gets a 3.6 m frame."""
    empty_scene()

    def figure(frame):
        alpha = np.zeros((40, 20))
        alpha[10:30, 5:15] = 1.0  # 20 of 40 rows
        return alpha

    make_take(tmp_path / "take", 2, 20, 40, colour=lambda f: np.full((40, 20, 3), 200, np.uint8), alpha=figure)
    card = make_card(tmp_path / "take", character_height=1.8, stand="FRAME", contact=False)
    zs = [v.co.z for v in card.data.vertices]
    assert max(zs) - min(zs) == pytest.approx(3.6, abs=1e-3)
    with pytest.raises(CardError, match="character_height"):
        make_card(tmp_path / "take", character_height=0.0)


def test_a_tracking_card_keeps_facing_the_camera_after_the_camera_moves(tmp_path):
    scene = empty_scene()
    camera = front_camera(scene)
    make_take(tmp_path / "take", 1, 16, 32, colour=lambda f: np.full((32, 16, 3), 200, np.uint8))
    card = make_card(tmp_path / "take", track_camera=True)
    fixed = make_card(tmp_path / "take", name="Fixed")
    camera.location = (6.0, -2.0, camera.location.z)  # round to the side
    bpy.context.view_layer.update()

    def facing(obj):  # the card's front (-Y) against the direction to the camera, in the ground plane
        front = (obj.matrix_world.to_3x3() @ Vector((0, -1, 0))).to_2d().normalized()
        to_camera = (camera.matrix_world.translation - obj.matrix_world.translation).to_2d().normalized()
        return front.dot(to_camera)

    assert facing(card) > 0.999
    assert facing(fixed) < 0.95  # without the constraint it stays as made
    up = card.matrix_world.to_3x3() @ Vector((0, 0, 1))
    assert up.z > 0.999  # turned about Z only
    card.constraints["Face Camera"].mute = True  # the artist turns it off: the card stays where it was made
    bpy.context.view_layer.update()
    assert facing(card) == pytest.approx(facing(fixed), abs=1e-6)


def test_switching_a_card_off_for_render_survives_frame_changes_and_on_restores_its_timing(tmp_path):
    from blender_addon.scene.cards import card_rendered, set_card_rendered

    scene = empty_scene()
    make_take(tmp_path / "take", 4, 16, 32, colour=lambda f: np.full((32, 16, 3), 200, np.uint8))
    card = make_card(tmp_path / "take", frame_start=5)
    set_card_rendered(card, False)
    for frame in (1, 5, 7, 6):
        scene.frame_set(frame)
        assert card.hide_render and not card_rendered(card), frame
    set_card_rendered(card, True)
    scene.frame_set(6)
    assert not card.hide_render and card_rendered(card)
    scene.frame_set(2)
    assert card.hide_render  # before its start the timing still hides it
