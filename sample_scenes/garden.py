"""An outdoor garden: a sun, a lawn with a path, primitive trees and bushes, and a camera trucking past.

    python -m sample_scenes.garden OUT.blend [--frames 48]

The character's spot is the empty "Card Spot" at the origin, on the path.
"""

from __future__ import annotations

import argparse
import math
import random
import sys

import bpy

from sample_scenes import common

TREES = ((-3.2, 3.5), (2.8, 4.5), (-5.5, 7.0), (4.8, 8.5), (0.6, 9.5), (-1.8, 12.0), (6.5, 3.0))


def build(scene: bpy.types.Scene | None = None, frames: int = 48, size=(1280, 720), samples: int = 16) -> dict:
    scene = common.fresh_scene(scene, "Garden")
    scene.frame_start, scene.frame_end = 1, frames
    common.world_colour(scene, (0.35, 0.55, 0.9), 0.8)
    common.cycles(scene, size, samples)

    grass = common.material("Grass", (0.08, 0.25, 0.05), roughness=0.95)
    gravel = common.material("Gravel", (0.45, 0.4, 0.33), roughness=0.95)
    bark = common.material("Bark", (0.18, 0.1, 0.05))
    leaves = [common.material(f"Leaves {i}", rgb) for i, rgb in
              enumerate(((0.05, 0.22, 0.04), (0.1, 0.3, 0.05), (0.2, 0.28, 0.04)))]
    common.plane(scene, "Lawn", 60, 60, (0, 10, 0), mat=grass)
    common.plane(scene, "Path", 1.6, 30, (0, 10, 0.005), mat=gravel)

    rng = random.Random(7)  # the same garden every time
    for i, (x, y) in enumerate(TREES):
        height = rng.uniform(2.2, 3.4)
        common.cone(scene, f"Trunk {i}", 0.14, 0.1, height, (x, y, height / 2), mat=bark)
        if i % 2:
            common.cone(scene, f"Crown {i}", 1.1, 0.0, 2.6, (x, y, height + 1.0), mat=leaves[i % 3])
        else:
            common.ball(scene, f"Crown {i}", rng.uniform(1.0, 1.4), (x, y, height + 0.6), mat=leaves[i % 3])
    for i in range(10):
        x = rng.choice((-1, 1)) * rng.uniform(1.3, 4.0)
        common.ball(scene, f"Bush {i}", rng.uniform(0.3, 0.55), (x, rng.uniform(1.0, 10.0), 0.2), mat=leaves[i % 3])

    card_spot = common.empty(scene, "Card Spot", (0, 0, 0), size=0.5)
    look = common.empty(scene, "Look At", (0, 0, 1.0), card_spot)
    sun = common.light(scene, "Sun", "SUN", (0, 0, 10), 3.5, (1.0, 0.95, 0.85),
                       rotation=(math.radians(50), 0, math.radians(35)))
    sun.data.angle = math.radians(2)

    cam = common.camera(scene, "Camera", (-2.5, -5.0, 1.5), lens=35)
    common.key(cam, "location", scene.frame_start, (-2.5, -5.0, 1.5))
    common.key(cam, "location", scene.frame_end, (2.5, -4.6, 1.7))  # trucking past, turning to follow
    common.aim(cam, look)
    cam.data.dof.use_dof = True
    cam.data.dof.aperture_fstop = 4.0
    cam.data.dof.focus_object = look
    return {"scene": scene, "camera": cam, "card_spot": card_spot, "lights": [sun]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sample_scenes.garden", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the .blend to save")
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args(argv)
    made = build(bpy.context.scene, frames=args.frames)
    bpy.ops.wm.save_as_mainfile(filepath=str(args.out))
    print(f"garden: {args.out} (camera {made['camera'].name}, card spot {made['card_spot'].name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
