"""Sample footage made here: a low-poly figure walking in place and waving, on a green screen.

    python -m sample_scenes.footage OUT_DIR [--frames 48] [--size 270x480]

writes OUT_DIR/0001.png ... (and OUT_DIR/footage.mp4 when Blender's FFMPEG output works). The figure is
built from primitives parented to joint empties whose rotations are keyed on every frame, rendered with
Workbench (flat studio light, a fraction of a second per frame), so the demo needs nothing from outside.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import bpy

from blender_addon.compat import set_media_type
from sample_scenes import common

GREEN = (0.02, 0.55, 0.04)   # linear; a saturated screen green the chroma key expects
SKIN = (0.75, 0.45, 0.33)
SHIRT = (0.55, 0.08, 0.10)
TROUSERS = (0.08, 0.09, 0.22)
HAIR = (0.12, 0.06, 0.03)
STRIDE_FRAMES = 24           # one full walk cycle per second at 24 fps


def build_figure(scene: bpy.types.Scene) -> dict:
    """The figure's parts: a root, joints (empties) and the meshes hanging from them. 1.75 m tall."""
    skin, shirt = common.material("Skin", SKIN), common.material("Shirt", SHIRT)
    trousers, hair = common.material("Trousers", TROUSERS), common.material("Hair", HAIR)
    root = common.empty(scene, "Figure", (0, 0, 0))
    hips = common.empty(scene, "Hips", (0, 0, 0.95), root)
    common.box(scene, "Pelvis", (0.34, 0.2, 0.16), (0, 0, 0.02), hips, trousers)
    chest = common.empty(scene, "Chest", (0, 0, 0.1), hips)
    common.box(scene, "Torso", (0.4, 0.22, 0.52), (0, 0, 0.26), chest, shirt)
    neck = common.empty(scene, "Neck", (0, 0, 0.54), chest)
    common.cone(scene, "NeckMesh", 0.06, 0.06, 0.1, (0, 0, 0.03), neck, skin)
    common.ball(scene, "Head", 0.12, (0, 0, 0.18), neck, skin)
    common.ball(scene, "Hair", 0.125, (0, 0.02, 0.22), neck, hair).scale = (1, 1, 0.7)
    joints = {"root": root, "hips": hips, "chest": chest, "neck": neck}
    for side, x in (("L", 0.25), ("R", -0.25)):
        shoulder = common.empty(scene, f"Shoulder.{side}", (x, 0, 0.48), chest)
        common.cone(scene, f"UpperArm.{side}", 0.055, 0.05, 0.3, (0, 0, 0), shoulder, shirt, base_at_origin=True)
        elbow = common.empty(scene, f"Elbow.{side}", (0, 0, -0.3), shoulder)
        common.cone(scene, f"Forearm.{side}", 0.045, 0.04, 0.27, (0, 0, 0), elbow, skin, base_at_origin=True)
        common.ball(scene, f"Hand.{side}", 0.05, (0, 0, -0.3), elbow, skin)
        hip = common.empty(scene, f"Hip.{side}", (x * 0.4, 0, -0.04), hips)
        common.cone(scene, f"Thigh.{side}", 0.08, 0.065, 0.44, (0, 0, 0), hip, trousers, base_at_origin=True)
        knee = common.empty(scene, f"Knee.{side}", (0, 0, -0.44), hip)
        common.cone(scene, f"Shin.{side}", 0.06, 0.05, 0.44, (0, 0, 0), knee, trousers, base_at_origin=True)
        common.box(scene, f"Foot.{side}", (0.1, 0.22, 0.06), (0, -0.05, -0.46), knee, hair)
        joints.update({f"shoulder.{side}": shoulder, f"elbow.{side}": elbow, f"hip.{side}": hip, f"knee.{side}": knee})
    return joints


def animate_figure(joints: dict, frame_start: int, frame_end: int) -> None:
    """Walk in place (legs and left arm swing, hips bob) while the right arm waves overhead."""
    for frame in range(frame_start, frame_end + 1):
        phase = 2 * math.pi * (frame - frame_start) / STRIDE_FRAMES
        swing = math.sin(phase)
        common.key(joints["hip.L"], "rotation_euler", frame, 0.45 * swing, 0)
        common.key(joints["hip.R"], "rotation_euler", frame, -0.45 * swing, 0)
        common.key(joints["knee.L"], "rotation_euler", frame, -0.6 * max(0.0, -swing), 0)
        common.key(joints["knee.R"], "rotation_euler", frame, -0.6 * max(0.0, swing), 0)
        common.key(joints["hips"], "location", frame, 0.95 + 0.025 * abs(math.cos(phase)), 2)
        common.key(joints["chest"], "rotation_euler", frame, 0.08 * swing, 2)
        common.key(joints["shoulder.L"], "rotation_euler", frame, -0.4 * swing, 0)
        common.key(joints["elbow.L"], "rotation_euler", frame, 0.3, 0)
        # right arm up and out to the side, forearm waving twice per stride
        common.key(joints["shoulder.R"], "rotation_euler", frame, 2.0, 1)
        common.key(joints["elbow.R"], "rotation_euler", frame, 0.7 + 0.4 * math.sin(2 * phase), 1)
        common.key(joints["neck"], "rotation_euler", frame, 0.1 * math.sin(phase / 2), 2)


def build(scene: bpy.types.Scene | None = None, frames: int = 48, size=(270, 480)) -> dict:
    """A green-screen scene with the animated figure and a front camera (portrait frame, full body)."""
    scene = common.fresh_scene(scene, "Footage")
    common.world_colour(scene, GREEN)
    joints = build_figure(scene)
    scene.frame_start, scene.frame_end = 1, frames
    animate_figure(joints, scene.frame_start, scene.frame_end)
    target = common.empty(scene, "Look", (0, 0, 0.92))
    cam = common.camera(scene, "Footage Camera", (1.6, -5.2, 1.1), lens=65)
    common.aim(cam, target)

    scene.render.engine = "BLENDER_WORKBENCH"
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "MATERIAL"
    shading.show_shadows = False
    shading.show_cavity = False
    scene.display.render_aa = "8"
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.fps = 24
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    return {"scene": scene, "camera": cam, "figure": joints["root"], "joints": joints}


def render_png_sequence(scene: bpy.types.Scene, out_dir: Path) -> list[Path]:
    """Render every frame to OUT/0001.png ...; frames already there are kept (a rerun is cheap)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = scene.render.image_settings
    set_media_type(settings, "IMAGE")
    settings.file_format = "PNG"
    settings.color_mode = "RGB"
    settings.color_depth = "8"
    paths = []
    for frame in range(scene.frame_start, scene.frame_end + 1):
        path = out_dir / f"{frame:04d}.png"
        if not path.is_file():
            scene.frame_set(frame)
            scene.render.filepath = str(out_dir / f".{frame:04d}.tmp.png")
            bpy.ops.render.render(write_still=True, scene=scene.name)
            Path(scene.render.filepath).replace(path)
        paths.append(path)
    return paths


def render_footage(out_dir: str | Path, frames: int = 48, size=(270, 480), mp4: bool = True) -> Path:
    """Build the footage scene in a scene of its own, render it, and remove that scene again."""
    from blender_addon.headless.movie import encode_mp4

    out_dir = Path(out_dir)
    made = build(None, frames=frames, size=size)
    scene = made["scene"]
    try:
        render_png_sequence(scene, out_dir)
    finally:
        for obj in list(scene.collection.all_objects):
            bpy.data.objects.remove(obj, do_unlink=True)
        bpy.data.scenes.remove(scene)
    if mp4:
        encode_mp4(out_dir, out_dir / "footage.mp4", fps=24)
    return out_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sample_scenes.footage", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder for 0001.png ...")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", default="270x480", help="WIDTHxHEIGHT")
    parser.add_argument("--no-mp4", action="store_true")
    args = parser.parse_args(argv)
    width, _, height = args.size.partition("x")
    render_footage(args.out, args.frames, (int(width), int(height)), mp4=not args.no_mp4)
    print(f"footage: {args.frames} frames in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
