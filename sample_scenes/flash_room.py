"""The seed's "flash room": a room with a wall behind the character, a red light flashing, a camera
dollying slowly back with a slight shake, and depth of field that follows the character.

    python -m sample_scenes.flash_room OUT.blend [--frames 48]

The character's spot is the empty "Card Spot" at the origin (the card stands there, its bottom edge on
the floor). The camera looks along +Y at a point 1 m above it; its focus object is the spot until a
card is placed, then the card (see `focus_on`).
"""

from __future__ import annotations

import argparse
import sys

import bpy

from sample_scenes import common

FLASH_ON, FLASH_OFF = 600.0, 5.0   # watts of the red light: a strobe that nearly goes dark between flashes
FLASH_PATTERN = (1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0)  # irregular, like a faulty neon, repeating


def build(scene: bpy.types.Scene | None = None, frames: int = 48, size=(1280, 720), samples: int = 16) -> dict:
    scene = common.fresh_scene(scene, "Flash Room")
    scene.frame_start, scene.frame_end = 1, frames
    common.world_colour(scene, (0.01, 0.01, 0.012), 1.0)
    common.cycles(scene, size, samples)

    plaster = common.material("Plaster", (0.55, 0.52, 0.48), roughness=0.9)
    floor_mat = common.material("Floorboards", (0.23, 0.15, 0.1), roughness=0.6)
    trim = common.material("Trim", (0.08, 0.08, 0.09), roughness=0.4)
    common.plane(scene, "Floor", 10, 10, (0, 0, 0), mat=floor_mat)
    common.box(scene, "Back Wall", (8, 0.2, 4), (0, 2.2, 2), mat=plaster)
    common.box(scene, "Left Wall", (0.2, 8, 4), (-3.5, -1.8, 2), mat=plaster)
    common.box(scene, "Skirting", (8, 0.05, 0.15), (0, 2.08, 0.075), mat=trim)
    common.box(scene, "Door", (1.0, 0.06, 2.1), (1.9, 2.1, 1.05), mat=trim)
    common.box(scene, "Crate", (0.6, 0.6, 0.6), (-1.9, 1.2, 0.3), mat=floor_mat).rotation_euler.z = 0.4

    card_spot = common.empty(scene, "Card Spot", (0, 0, 0), size=0.5)
    look = common.empty(scene, "Look At", (0, 0, 1.0), card_spot)

    red = common.light(scene, "Red Flash", "POINT", (1.6, 1.2, 2.4), FLASH_ON, (1.0, 0.05, 0.03), size=0.15)
    for frame in range(scene.frame_start, scene.frame_end + 1):
        on = FLASH_PATTERN[(frame - scene.frame_start) % len(FLASH_PATTERN)]
        common.key(red.data, "energy", frame, FLASH_ON if on else FLASH_OFF)
    _constant_interpolation(red.data)
    key_light = common.light(scene, "Key", "AREA", (-1.8, -2.5, 3.0), 120.0, (1.0, 0.9, 0.8), size=1.5)
    common.aim(key_light, look)
    bulb = common.ball(scene, "Red Bulb", 0.06, red.location, mat=common.material("Red Glow", (1, 0.05, 0.03), emission=8))
    bulb.visible_shadow = False

    cam = common.camera(scene, "Camera", (0.3, -3.0, 1.35), lens=24)  # the whole figure in frame
    common.key(cam, "location", scene.frame_start, (0.3, -3.0, 1.35))
    common.key(cam, "location", scene.frame_end, (0.5, -4.6, 1.5))  # a slow dolly back
    _shake(cam, strength=0.015, scale=6.0)
    common.aim(cam, look)
    cam.data.dof.use_dof = True
    cam.data.dof.aperture_fstop = 2.0
    focus_on(cam, look)
    return {"scene": scene, "camera": cam, "card_spot": card_spot, "lights": [red, key_light], "flash": red}


def focus_on(camera: bpy.types.Object, target: bpy.types.Object) -> None:
    """Depth of field that follows `target` (the card, once placed)."""
    camera.data.dof.use_dof = True
    camera.data.dof.focus_object = target


def _constant_interpolation(data) -> None:
    from bpy_extras import anim_utils

    adt = data.animation_data
    bag = anim_utils.action_get_channelbag_for_slot(adt.action, adt.action_slot)
    for fcurve in bag.fcurves:
        for point in fcurve.keyframe_points:
            point.interpolation = "CONSTANT"


def _shake(obj: bpy.types.Object, strength: float, scale: float) -> None:
    """A handheld tremble: noise on the keyed location (x and z), seeded per axis."""
    from bpy_extras import anim_utils

    adt = obj.animation_data
    bag = anim_utils.action_get_channelbag_for_slot(adt.action, adt.action_slot)
    for fcurve in bag.fcurves:
        if fcurve.data_path == "location" and fcurve.array_index in (0, 2):
            noise = fcurve.modifiers.new("NOISE")
            noise.strength = strength
            noise.scale = scale
            noise.phase = 3.0 + 7.0 * fcurve.array_index


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sample_scenes.flash_room", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the .blend to save")
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args(argv)
    made = build(bpy.context.scene, frames=args.frames)
    bpy.ops.wm.save_as_mainfile(filepath=str(args.out))
    print(f"flash room: {args.out} (camera {made['camera'].name}, card spot {made['card_spot'].name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
