"""The filmed shadow on the floor under a card, in real bpy, rendered with Cycles.

A perspective camera looks down at a card standing at the origin on a grey floor lit by a sun. The take's
figure is a narrow upright bar; its `shadow` layer holds a patch (0.6) on the floor beside the figure, on
the left in frame 1 and on the right in frame 2. Where the floor should be darkened is worked out here
independently of the add-on: each pixel's camera ray, through the card's plane (the footage's shadow
there) on to the floor behind it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scene_fixtures import add_sun, empty_scene, make_take, render_passes, rgb, solid

import bpy
from mathutils import Vector
from backend.ipc.imagefiles import png_bytes
from backend.ipc.take import Layer, Take
from blender_addon.compat import shader_nodes
from blender_addon.scene.card_shadow import LIFT, card_decal, set_floor, set_shadow_strength
from blender_addon.scene.cards import CardError, make_card, set_card_rendered, set_card_shadow

SIZE = 96
N = 32           # take frames are N×N; the card is 2 m square, its bottom edge on the floor
DARK = 0.6       # the filmed shadow's value in its patch
CAMERA = Vector((0.0, -6.0, 2.0))


def figure(frame) -> np.ndarray:
    alpha = np.zeros((N, N), np.float32)
    alpha[2:, 14:18] = 1.0
    return alpha


def shadow_patch(frame) -> np.ndarray:
    shadow = np.zeros((N, N), np.float32)
    columns = slice(3, 11) if frame == 1 else slice(21, 29)
    shadow[18:30, columns] = DARK
    return shadow * (1 - figure(frame))  # as the backend writes it: only where the screen shows


def take_with_shadow(root, frames: int = 2, shadow=True):
    make_take(root, frames, N, N, colour=lambda f: solid(N, N, (200, 200, 200)), alpha=figure)
    if shadow:
        take = Take.open(root)
        take.info.layers["shadow"] = Layer("png16")
        take.save_info()
        for frame in take.info.frames:
            take.write_file("shadow", frame, png_bytes(np.round(shadow_patch(frame) * 65535).astype(np.uint16)))
    return root


def floor_scene():
    scene = empty_scene((SIZE, SIZE), samples=4)
    mesh = bpy.data.meshes.new("Floor")
    mesh.from_pydata([(-20, -20, 0), (20, -20, 0), (20, 20, 0), (-20, 20, 0)], [], [(0, 1, 2, 3)])
    floor = bpy.data.objects.new("Floor", mesh)
    scene.collection.objects.link(floor)
    material = bpy.data.materials.new("Floor")
    principled = shader_nodes(material).nodes["Principled BSDF"]
    principled.inputs["Base Color"].default_value = (0.8, 0.8, 0.8, 1.0)
    principled.inputs["Roughness"].default_value = 1.0
    mesh.materials.append(material)
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    camera.location = CAMERA
    camera.rotation_euler = (Vector((0.0, 0.0, 0.6)) - CAMERA).to_track_quat("-Z", "Y").to_euler()
    scene.camera = camera
    add_sun(scene, (1.0, 0.6, -1.0), energy=3.0)  # the card's own shadow falls to the right, behind it
    return scene


def camera_rays(scene, card) -> tuple[np.ndarray, np.ndarray]:
    """The camera's position and each pixel centre's ray direction (SIZE×SIZE×3) in the card's space, where
    the frame spans x -1..1, z 0..2 on the plane y = 0 and the floor is z = 0."""
    bpy.context.view_layer.update()
    camera, to_card = scene.camera, card.matrix_world.inverted()
    corners = [np.array(to_card.to_3x3() @ (camera.matrix_world.to_3x3() @ v))
               for v in camera.data.view_frame(scene=scene)]
    top_right, bottom_right, bottom_left, top_left = corners
    x = ((np.arange(SIZE) + 0.5) / SIZE)[None, :, None]
    y = (1 - (np.arange(SIZE) + 0.5) / SIZE)[:, None, None]
    origin = np.array(to_card @ camera.matrix_world.translation)
    return origin, bottom_left + x * (bottom_right - bottom_left) + y * (top_left - bottom_left)


def floor_seen(scene, card) -> np.ndarray:
    """Pixels where the camera sees the floor (its 40 m square), not the card's figure in front of it."""
    c, d = camera_rays(scene, card)
    with np.errstate(divide="ignore", invalid="ignore"):
        to_floor = np.where(d[..., 2] < 0, -c[2] / d[..., 2], np.inf)
    p = c + np.where(np.isfinite(to_floor), to_floor, 0)[..., None] * d
    on_floor = np.isfinite(to_floor) & (np.abs(p[..., 0]) < 19) & (np.abs(p[..., 1]) < 19)
    figure_in_front = footage_under(scene, card, figure(1), np.zeros((N, N))) > 0  # clear matte: the figure's place
    return on_floor & ~grow(figure_in_front, 1)


def footage_under(scene, card, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per pixel: the footage's `image` value at the card point the camera's ray crosses on its way to the
    floor behind the card, where the matte there is clear (0 where the card, the sky or the near floor shows)."""
    c, d = camera_rays(scene, card)
    with np.errstate(divide="ignore", invalid="ignore"):
        to_card, to_floor = -c[1] / d[..., 1], -c[2] / d[..., 2]
    q = c + to_card[..., None] * d
    hit = (d[..., 2] < 0) & (to_card > 0) & (to_card < to_floor) & (np.abs(q[..., 0]) < 1) & (q[..., 2] > 0) \
        & (q[..., 2] < 2)
    i = np.clip(((1 - q[..., 2] / 2) * N).astype(int), 0, N - 1)
    j = np.clip(((q[..., 0] + 1) / 2 * N).astype(int), 0, N - 1)
    return np.where(hit & (alpha[i, j] == 0), image[i, j], 0.0)


def patch_masks(scene, card, frame):
    """Pixels surely inside the darkened patch and pixels that may be touched by it: the patch shrunk and
    grown by a texel (the texture interpolates) and by a pixel (the pixel filter blends)."""
    patch, alpha = shadow_patch(frame) > 0, figure(frame)
    shrunk, grown = ~grow(~patch, 1), grow(patch, 1)
    core = ~grow(~(footage_under(scene, card, shrunk.astype(np.float32), alpha) > 0), 2)
    near = grow(footage_under(scene, card, grown.astype(np.float32), alpha) > 0, 1)
    return core, near


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    for _ in range(pixels):
        mask = mask | np.roll(mask, 1, 0) | np.roll(mask, -1, 0) | np.roll(mask, 1, 1) | np.roll(mask, -1, 1)
    return mask


def floor_brightness(scene, path) -> np.ndarray:
    return rgb(render_passes(scene, path)).mean(-1)


def test_the_floor_darkens_where_the_filmed_shadow_is_and_nowhere_else_and_it_moves_with_the_frames(tmp_path):
    scene = floor_scene()
    card = make_card(take_with_shadow(tmp_path / "take"), height=2.0, location=(0, 0, 0), stand="FRAME",
                     contact=False, displace="NONE", shadow="FILMED")
    decal = card_decal(card)
    assert decal is not None and not card.visible_shadow and not decal.visible_shadow
    centres = [darkening_lines_up(scene, card, tmp_path, frame) for frame in (1, 2)]
    assert centres[1] - centres[0] > 20, centres  # frame 2's patch is on the figure's other side


def shadow_of_card(scene, card, tmp_path, name) -> int:
    """Floor pixels in the card's own (Blender's) shadow: seen floor, far darker than the floor in full sun."""
    image = floor_brightness(scene, tmp_path / f"{name}.exr")
    lit = np.median(image[SIZE - 10:, :])  # the floor in front of the card
    return int((floor_seen(scene, card) & (image < 0.5 * lit)).sum())


@pytest.mark.parametrize("mode,casts", [("BLENDER", True), ("FILMED", False), ("BOTH", True)])
def test_the_card_casts_its_own_shadow_unless_the_filmed_one_replaces_it(tmp_path, mode, casts):
    scene = floor_scene()
    card = make_card(take_with_shadow(tmp_path / "take"), height=2.0, location=(0, 0, 0), stand="FRAME",
                     contact=False, displace="NONE", shadow=mode)
    scene.frame_set(2)  # the filmed patch on the right as well: hide it to count Blender's shadow alone
    if card_decal(card) is not None:
        card_decal(card).visible_camera = False
    assert (card_decal(card) is not None) == (mode != "BLENDER")
    assert (shadow_of_card(scene, card, tmp_path, mode) > 10) == casts


def test_blenders_shadow_alone_renders_exactly_as_a_take_without_a_shadow_layer(tmp_path):
    scene = floor_scene()
    make_card(take_with_shadow(tmp_path / "plain", shadow=False), height=2.0, location=(0, 0, 0), stand="FRAME",
              contact=False, displace="NONE", name="Card")
    before = rgb(render_passes(scene, tmp_path / "before.exr"))
    for obj in [o for o in scene.objects if o.get("stage_card")]:
        bpy.data.objects.remove(obj)
    card = make_card(take_with_shadow(tmp_path / "take"), height=2.0, location=(0, 0, 0), stand="FRAME",
                     contact=False, displace="NONE", name="Card")
    assert card_decal(card) is None and card.visible_shadow
    np.testing.assert_array_equal(rgb(render_passes(scene, tmp_path / "after.exr")), before)


def test_the_shadow_mode_changes_on_a_made_card_and_follows_its_timing(tmp_path):
    scene = floor_scene()
    card = make_card(take_with_shadow(tmp_path / "take", frames=3), height=2.0, location=(0, 0, 0), stand="FRAME",
                     contact=False, displace="NONE", frame_start=5, extend="STOP")
    set_card_shadow(card, "BOTH")
    decal = card_decal(card)
    assert decal is not None and card.visible_shadow and card["stage_shadow"] == "BOTH"
    assert decal.active_material.diffuse_color[3] < 0.5  # the Solid viewport sees through it
    user = decal.active_material.node_tree.nodes["shadow"].image_user
    assert (user.frame_start, user.frame_duration) == (5, 3)
    for frame, shown in ((4, False), (5, True), (7, True), (8, False)):
        scene.frame_set(frame)
        assert decal.hide_render == card.hide_render == (not shown), frame
    scene.frame_set(6)
    set_card_rendered(card, False)
    assert decal.hide_render
    set_card_rendered(card, True)
    assert not decal.hide_render
    set_shadow_strength(card, 0.5)
    with pytest.raises(CardError, match="strength"):
        set_shadow_strength(card, -1.0)
    set_card_shadow(card, "BLENDER")
    assert card_decal(card) is None and card.visible_shadow
    for data in (bpy.data.meshes, bpy.data.materials, bpy.data.images):  # nothing of the decal is left behind
        assert not [block.name for block in data if block.name.endswith(" shadow")]


def test_a_filmed_shadow_from_a_take_without_one_is_refused_with_the_fix(tmp_path):
    floor_scene()
    with pytest.raises(CardError, match="shadow=true"):
        make_card(take_with_shadow(tmp_path / "take", shadow=False), shadow="FILMED")
    with pytest.raises(CardError, match="accepted: BLENDER, FILMED, BOTH"):
        make_card(take_with_shadow(tmp_path / "take2"), shadow="filmed")


def darkening_lines_up(scene, card, tmp_path, frame: int) -> float:
    """Render `frame` with and without the decal; check the floor is darkened by the filmed amount where the
    camera's rays say and untouched elsewhere. Returns the darkened pixels' mean column."""
    decal = card_decal(card)
    scene.frame_set(frame)
    shaded = floor_brightness(scene, tmp_path / f"shadow{frame}.exr")
    decal.visible_camera = False  # as if it were not there (hide_render is keyed by the card's timing)
    plain = floor_brightness(scene, tmp_path / f"plain{frame}.exr")
    decal.visible_camera = True
    core, near = patch_masks(scene, card, frame)
    assert core.sum() > 20, core.sum()  # the patch covers enough floor to judge
    ratio = shaded[core] / np.maximum(plain[core], 1e-6)
    assert np.abs(ratio - (1 - DARK)).max() < 0.05, ratio  # darkened by the filmed amount, lined up
    assert np.abs(shaded[~near] - plain[~near]).max() < 0.01  # untouched (card, floor, sky) elsewhere
    return float(np.nonzero(plain - shaded > 0.1)[1].mean())


def test_the_decal_turns_with_a_card_that_faces_a_moved_camera(tmp_path):
    """The camera on +X: the card turns 90° to face it, and the patch still lands where the camera's rays say."""
    scene = floor_scene()
    scene.camera.location = (6.0, 1.0, 2.0)
    scene.camera.rotation_euler = (Vector((0.0, 0.0, 0.6)) - scene.camera.location).to_track_quat("-Z", "Y").to_euler()
    card = make_card(take_with_shadow(tmp_path / "take"), height=2.0, location=(0, 0, 0), stand="FRAME",
                     contact=False, displace="NONE", shadow="FILMED")
    assert card.rotation_euler.z == pytest.approx(math.atan2(6.0, -1.0))
    darkening_lines_up(scene, card, tmp_path, 1)


def test_the_decal_stays_on_the_floor_while_the_card_follows_the_feet(tmp_path):
    """A take whose feet rise: the card's delta Z is keyed down, its decal keeps to the floor."""
    floor_scene()

    def rising(frame):
        alpha = np.zeros((N, N), np.float32)
        alpha[2:32 - 3 * frame, 14:18] = 1.0
        return alpha

    make_take(tmp_path / "take", 3, N, N, colour=lambda f: solid(N, N, (200, 200, 200)), alpha=rising)
    take = Take.open(tmp_path / "take")
    take.info.layers["shadow"] = Layer("png16")
    take.save_info()
    for frame in take.info.frames:
        take.write_file("shadow", frame, png_bytes(np.zeros((N, N), np.uint16)))
    card = make_card(tmp_path / "take", height=2.0, location=(0, 0, 0.5), displace="NONE", shadow="BOTH")
    decal = card_decal(card)
    heights = []
    for frame in (1, 2, 3):
        bpy.context.scene.frame_set(frame)
        heights.append(card.matrix_world.translation.z)
        assert decal.matrix_world.translation.z == pytest.approx(0.5 + LIFT, abs=1e-6), frame
    assert max(heights) - min(heights) > 0.3, heights  # the card did move
    set_floor(card, 0.2)  # a floor elsewhere (a card stood on its frame's edge)
    bpy.context.view_layer.update()
    assert decal.matrix_world.translation.z == pytest.approx(0.2 + LIFT, abs=1e-6)


@pytest.mark.slow  # EEVEE on software OpenGL: its first run compiles shaders
def test_eevee_lays_the_same_shadow(tmp_path):
    from blender_addon import compat

    scene = floor_scene()
    scene.render.engine = compat.EEVEE
    scene.eevee.taa_render_samples = 4
    card = make_card(take_with_shadow(tmp_path / "take"), height=2.0, location=(0, 0, 0), stand="FRAME",
                     contact=False, displace="NONE", shadow="FILMED")
    darkening_lines_up(scene, card, tmp_path, 1)
    scene.frame_set(2)
    card_decal(card).visible_camera = False
    assert shadow_of_card(scene, card, tmp_path, "eevee_own") == 0  # EEVEE honours it too: the card casts none


def test_the_control_passes_see_the_floor_not_the_decal(tmp_path):
    """Segmentation (and depth, normals) are the scene's geometry: the tagged floor under a filmed shadow stays
    the floor's colour."""
    from blender_addon.scene.frames import read_frame
    from blender_addon.scene.passes import render_passes as render_control_passes

    scene = floor_scene()
    scene.objects["Floor"]["stage_tag"] = "floor"
    card = make_card(take_with_shadow(tmp_path / "take"), height=2.0, location=(0, 0, 0), stand="FRAME",
                     contact=False, displace="NONE", shadow="FILMED")
    scene.frame_set(1)
    core, _ = patch_masks(scene, card, 1)
    take = render_control_passes(tmp_path / "passes", scene=scene, camera=scene.camera, frame_start=1, frame_end=1,
                                 layers=("segmentation",))
    segmentation = read_frame(take, "segmentation", 1)
    floor_colour = segmentation[SIZE - 2, 2]
    assert floor_colour.any()  # the floor is tagged
    assert (segmentation[core] == floor_colour).all()
    assert card_decal(card).visible_camera  # the render put it back
