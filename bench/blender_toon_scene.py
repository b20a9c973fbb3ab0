"""Renders the benchmark's animated scene with Blender (run by bench/blender_clip.py in .venv-blender-5.3's Python).

    python blender_toon_scene.py OUT_DIR {plain|toon|mask} FRAMES WIDTH HEIGHT

A figure (body, head, a fast swinging arm) walks behind a pillar in front of a textured wall and floor; the
camera dollies and pans, and cuts to a second angle two thirds of the way through. `plain`: lit, textured
materials (Cycles). `toon`: the same scene in flat colours with Freestyle ink lines: the structural style's
truth at every frame. `mask`: the figure white, everything else black (flat emission, no ink), so a benchmark
can measure what happens on the moving figure (bench/flow_real.py). Frames are posed directly each frame (no
animation data), written as 0001.png ...
"""

import math
import sys
from pathlib import Path

import bpy


def material(name, colour, toon, checker=None, noise=False):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    coords = nodes.new("ShaderNodeTexCoord")
    colour_socket = None
    if checker is not None:
        tex = nodes.new("ShaderNodeTexChecker")
        tex.inputs["Color1"].default_value = colour
        tex.inputs["Color2"].default_value = checker
        tex.inputs["Scale"].default_value = 1.0  # squares about a metre wide: no aliasing shimmer
        links.new(coords.outputs["Object"], tex.inputs["Vector"])
        colour_socket = tex.outputs["Color"]
    if noise and not toon:  # fine texture the toon version flattens away
        tex = nodes.new("ShaderNodeTexNoise")
        tex.inputs["Scale"].default_value = 18.0
        tex.inputs["Detail"].default_value = 3.0
        links.new(coords.outputs["Object"], tex.inputs["Vector"])
        mix = nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        mix.blend_type = "MULTIPLY"
        mix.inputs["Factor"].default_value = 0.6
        if colour_socket is None:
            mix.inputs["A"].default_value = colour
        else:
            links.new(colour_socket, mix.inputs["A"])
        links.new(tex.outputs["Color"], mix.inputs["B"])
        colour_socket = mix.outputs["Result"]
    if toon:
        shader = nodes.new("ShaderNodeEmission")
        target = shader.inputs["Color"]
    else:
        shader = nodes.new("ShaderNodeBsdfPrincipled")
        target = shader.inputs["Base Color"]
    if colour_socket is None:
        target.default_value = colour
    else:
        links.new(colour_socket, target)
    links.new(shader.outputs[0], out.inputs["Surface"])
    return mat


def add(kind, name, mat, **kwargs):
    getattr(bpy.ops.mesh, f"primitive_{kind}_add")(**kwargs)
    obj = bpy.context.active_object
    obj.name = name
    obj.data.materials.append(mat)
    if kind in ("uv_sphere", "cylinder"):
        bpy.ops.object.shade_smooth()
    return obj


def build(toon: bool, mask: bool = False):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    floor = add("plane", "floor", material("floor", (0.55, 0.5, 0.4, 1), toon, (0.25, 0.3, 0.35, 1), True), size=30)
    wall = add("plane", "wall", material("wall", (0.7, 0.35, 0.25, 1), toon, (0.85, 0.75, 0.5, 1), True), size=30)
    wall.location, wall.rotation_euler = (0, 6, 0), (math.pi / 2, 0, 0)
    pillar = add("cube", "pillar", material("pillar", (0.2, 0.45, 0.7, 1), toon, None, True), size=1)
    pillar.location, pillar.scale = (0.3, -1.2, 1.5), (0.45, 0.45, 1.5)
    figure = {
        "body": add("cylinder", "body", material("body", (0.85, 0.6, 0.2, 1), toon, None, True),
                    radius=0.35, depth=1.3),
        "head": add("uv_sphere", "head", material("head", (0.95, 0.8, 0.65, 1), toon, None, False), radius=0.3),
        "arm": add("cube", "arm", material("arm", (0.2, 0.6, 0.3, 1), toon, None, True), size=1),
    }
    figure["arm"].scale = (0.12, 0.12, 0.55)
    if mask:  # flat white on the figure, black elsewhere: each object's material replaced by a plain emission
        white, black = material("white", (1, 1, 1, 1), True), material("black", (0, 0, 0, 1), True)
        for obj in (floor, wall, pillar, *figure.values()):
            obj.data.materials[0] = white if obj in figure.values() else black
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy = 3.0
    sun.rotation_euler = (math.radians(50), math.radians(10), math.radians(30))
    scene.collection.objects.link(sun)
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0, 0, 0, 1) if mask else (0.35, 0.38, 0.45, 1)
    scene.world = world
    cameras = []
    for name in ("near", "far"):
        cam = bpy.data.objects.new(name, bpy.data.cameras.new(name))
        cam.data.lens = 30
        scene.collection.objects.link(cam)
        cameras.append(cam)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    # Few samples, denoised: the shared 2-core machine renders a frame in seconds, not tens of them.
    scene.cycles.samples = 2 if toon or mask else 6
    scene.cycles.use_denoising = not (toon or mask)
    scene.cycles.max_bounces = 1
    scene.cycles.diffuse_bounces = 1
    scene.cycles.glossy_bounces = 0
    scene.cycles.seed = 1
    scene.view_settings.view_transform = "Standard"
    if toon and not mask:
        scene.render.use_freestyle = True
        scene.render.line_thickness_mode = "ABSOLUTE"
        scene.render.line_thickness = 1.2
        settings = scene.view_layers[0].freestyle_settings
        lineset = settings.linesets[0] if len(settings.linesets) else settings.linesets.new("ink")
        if lineset.linestyle is None:
            lineset.linestyle = bpy.data.linestyles.new("ink")
        lineset.linestyle.color = (0, 0, 0)
    return scene, figure, cameras


def pose(scene, figure, cameras, f: int, count: int):
    u = f / max(count - 1, 1)
    x = -3.0 + 6.0 * u  # walks left to right, behind the pillar
    figure["body"].location = (x, 0.0, 0.65 + 0.05 * math.sin(f * 1.3))
    figure["head"].location = (x + 0.05 * math.sin(f * 0.7), 0.0, 1.6)
    swing = math.radians(70) * math.sin(f * 0.9)  # a fast limb: up to ~60 degrees a frame
    figure["arm"].rotation_euler = (swing, 0.0, 0.0)
    figure["arm"].location = (x + 0.45, -0.55 * math.sin(swing) * 0.5, 1.2 - 0.5 * math.cos(swing) * 0.55)
    near, far = cameras
    near.location = (-1.0 + 2.5 * u, -8.5 + 1.0 * u, 2.2)  # dolly and pan
    near.rotation_euler = (math.radians(80), 0.0, math.radians(-8 + 10 * u))
    far.location = (6.5, -6.0, 3.5)
    far.rotation_euler = (math.radians(72), 0.0, math.radians(45 + 6 * u))
    scene.camera = near if f < (2 * count) // 3 else far


def main():
    out, mode, count, width, height = sys.argv[-5:]
    count, toon, mask = int(count), mode == "toon", mode == "mask"
    scene, figure, cameras = build(toon or mask, mask)
    scene.render.resolution_x, scene.render.resolution_y = int(width), int(height)
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(count):
        pose(scene, figure, cameras, f, count)
        scene.render.filepath = str(folder / f"{f + 1:04d}.png")
        bpy.ops.render.render(write_still=True)


if __name__ == "__main__":
    main()
