"""Green-screen shots rendered with Cycles, with their true alpha (run by bench/matte.py in .venv-blender-5.3).

    .venv-blender-5.3/bin/python bench/matte_scene.py OUT_DIR SHOT WIDTH HEIGHT FRAMES

A figure (body, head, arms, legs, hair-like strands) stands on a green floor in front of a green wall
(a cove), lit by one key light from the side so that its shadow falls on the floor and the wall, and the
screen falls off to one side. Shots:
    ordinary     the above, the figure turning slowly
    motion       the figure running sideways (3.6 m/s at 24 fps, 180-degree shutter), with motion blur
    bright       the figure dressed in pale yellow-green, close to the screen's colour
    overexposed  the ordinary shot two stops over, highlights clipped
Each frame is rendered twice: the beauty (the screen in view) and the truth (the screen hidden, film
transparent: its alpha is the figure's true coverage, with the same antialiasing and motion blur).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import bpy

SHOTS = ("ordinary", "motion", "bright", "overexposed")
TRUTH_SAMPLES = 96


def material(name: str, colour: tuple[float, float, float], roughness: float = 0.6) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    return mat


def add(obj_op, mat, **kwargs) -> bpy.types.Object:
    obj_op(**kwargs)
    obj = bpy.context.active_object
    obj.data.materials.append(mat)
    return obj


def build(shot: str) -> tuple[list[bpy.types.Object], bpy.types.Object]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    screen_mat = material("screen", (0.05, 0.45, 0.08), roughness=0.9)
    screen = []
    bpy.ops.mesh.primitive_plane_add(size=12, location=(0, 0, 0))
    screen.append(bpy.context.active_object)
    bpy.ops.mesh.primitive_plane_add(size=12, location=(0, 3.0, 6), rotation=(math.pi / 2, 0, 0))
    screen.append(bpy.context.active_object)
    for obj in screen:
        obj.data.materials.append(screen_mat)

    bright = shot == "bright"
    skin = material("skin", (0.8, 0.55, 0.42))
    shirt = material("shirt", (0.55, 0.75, 0.35) if bright else (0.6, 0.08, 0.08))
    trousers = material("trousers", (0.5, 0.65, 0.4) if bright else (0.06, 0.08, 0.25))
    hair = material("hair", (0.9, 0.85, 0.6) if bright else (0.08, 0.05, 0.03))

    bpy.ops.object.empty_add(location=(0, 0, 0))
    figure = bpy.context.active_object
    parts = [
        add(bpy.ops.mesh.primitive_cylinder_add, shirt, radius=0.22, depth=0.7, location=(0, 0, 1.25)),
        add(bpy.ops.mesh.primitive_uv_sphere_add, skin, radius=0.13, location=(0, 0, 1.75)),
        add(bpy.ops.mesh.primitive_cylinder_add, trousers, radius=0.08, depth=0.9, location=(-0.1, 0, 0.45)),
        add(bpy.ops.mesh.primitive_cylinder_add, trousers, radius=0.08, depth=0.9, location=(0.1, 0, 0.45)),
        add(bpy.ops.mesh.primitive_cylinder_add, shirt, radius=0.05, depth=0.7, location=(-0.3, 0, 1.2),
            rotation=(0, 0.35, 0)),
        add(bpy.ops.mesh.primitive_cylinder_add, skin, radius=0.045, depth=0.65, location=(0.38, 0, 1.35),
            rotation=(0, -1.0, 0)),
    ]
    for i in range(14):   # hair-like strands: thinner than a pixel at the rendered size
        angle = -0.9 + i * 0.13
        parts.append(add(bpy.ops.mesh.primitive_cylinder_add, hair, radius=0.004, depth=0.35,
                         location=(0.16 * math.sin(angle), 0.02, 1.86 + 0.1 * math.cos(angle)),
                         rotation=(0, angle * 0.9, 0)))
    for part in parts:
        part.parent = figure
    for i, part in enumerate(parts):
        part.name = f"figure_{i}"

    bpy.ops.object.light_add(type="AREA", location=(-2.5, -2.5, 3.2))
    key = bpy.context.active_object
    key.data.energy = 350
    key.data.size = 0.6
    key.rotation_euler = (math.radians(50), 0, math.radians(-45))
    bpy.ops.object.light_add(type="POINT", location=(2.5, -3, 2.0))
    bpy.context.active_object.data.energy = 40       # a weak fill: the screen falls off to the right

    bpy.ops.object.camera_add(location=(0, -4.6, 1.1), rotation=(math.radians(88), 0, 0))
    scene.camera = bpy.context.active_object
    scene.camera.data.lens = 35

    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 24
    scene.cycles.use_denoising = True
    scene.cycles.max_bounces = 3
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.exposure = 2.0 if shot == "overexposed" else 0.0
    scene.render.use_motion_blur = shot == "motion"
    scene.render.motion_blur_shutter = 0.5      # a 180-degree shutter, as film cameras run
    return screen, figure


def animate(figure: bpy.types.Object, shot: str, frames: int) -> None:
    for f in range(1, frames + 2):
        t = f - 1
        if shot == "motion":
            figure.location = (-0.5 + 0.15 * t, 0, 0)      # 3.6 m/s at 24 fps: a run across the frame
        else:
            figure.location = (-0.3 + 0.05 * t, 0, 0)
        figure.rotation_euler = (0, 0, 0.15 * t)
        figure.keyframe_insert("location", frame=f)
        figure.keyframe_insert("rotation_euler", frame=f)


def render(out: Path, shot: str, width: int, height: int, frames: int) -> None:
    screen, figure = build(shot)
    animate(figure, shot, frames)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    for f in range(1, frames + 1):
        scene.frame_set(f)
        scene.render.film_transparent = False
        scene.render.image_settings.color_mode = "RGB"
        scene.render.image_settings.color_depth = "8"
        for obj in screen:
            obj.hide_render = False
        scene.render.filepath = str(out / "color" / f"{f:04d}.png")
        bpy.ops.render.render(write_still=True)
        # the truth: the screen hidden, the film transparent; enough samples that motion blur's alpha is smooth
        for obj in screen:
            obj.hide_render = True
        scene.render.film_transparent = True
        scene.render.image_settings.color_mode = "RGBA"
        scene.render.image_settings.color_depth = "16"
        samples = scene.cycles.samples
        scene.cycles.samples = TRUTH_SAMPLES
        scene.cycles.use_denoising = False
        scene.render.filepath = str(out / "truth" / f"{f:04d}.png")
        bpy.ops.render.render(write_still=True)
        scene.cycles.samples = samples
        scene.cycles.use_denoising = True


if __name__ == "__main__":
    out_dir, shot, width, height, frames = sys.argv[-5:]
    if shot not in SHOTS:
        raise SystemExit(f"unknown shot {shot!r}: one of {', '.join(SHOTS)}")
    render(Path(out_dir), shot, int(width), int(height), int(frames))
