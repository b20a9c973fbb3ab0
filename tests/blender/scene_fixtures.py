"""Helpers for the scene tests: an empty Cycles scene, tiny takes on disk, renders read back."""

from __future__ import annotations

import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from backend.ipc.take import Layer, Take, TakeInfo  # noqa: E402
from blender_addon.compat import set_media_type, shader_nodes  # noqa: E402
from backend.ipc.imagefiles import png_bytes, read_exr  # noqa: E402


def empty_scene(size: tuple[int, int] = (64, 64), samples: int = 8) -> bpy.types.Scene:
    """Factory settings, nothing in the scene, Cycles on the CPU, deterministic and small."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.seed = 1
    scene.cycles.max_bounces = 0  # direct light only: no bounce noise in pixel comparisons
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 2
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    world = bpy.data.worlds.new("World")
    scene.world = world
    set_world_colour(scene, (0.0, 0.0, 0.0))
    return scene


def set_world_colour(scene, rgb) -> None:
    world = scene.world
    background = world.node_tree.nodes.get("Background") if world.node_tree else None
    if background is None:
        world.use_nodes = True
        background = world.node_tree.nodes["Background"]
    background.inputs["Color"].default_value = (*rgb, 1.0)
    background.inputs["Strength"].default_value = 1.0


def front_camera(scene, *, distance: float = 6.0, height: float = 1.0, ortho_scale: float | None = 5.0):
    """A camera on -Y looking at +Y; orthographic unless ortho_scale is None."""
    data = bpy.data.cameras.new("Camera")
    if ortho_scale is not None:
        data.type = "ORTHO"
        data.ortho_scale = ortho_scale
    camera = bpy.data.objects.new("Camera", data)
    scene.collection.objects.link(camera)
    camera.location = (0.0, -distance, height)
    camera.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.camera = camera
    return camera


def add_sun(scene, direction, energy: float = 3.0, colour=(1.0, 1.0, 1.0)):
    """A sun whose light travels along `direction` (world space), with hard shadows."""
    from mathutils import Vector

    data = bpy.data.lights.new("Sun", type="SUN")
    data.energy = energy
    data.color = colour
    data.angle = 0.0
    sun = bpy.data.objects.new("Sun", data)
    scene.collection.objects.link(sun)
    sun.rotation_euler = Vector(direction).to_track_quat("-Z", "Y").to_euler()
    return sun


def add_wall(scene, y: float, size: float = 20.0, colour=(0.8, 0.8, 0.8)):
    """A large vertical plane at depth `y`, facing -Y, diffuse grey."""
    mesh = bpy.data.meshes.new("Wall")
    h = size / 2
    mesh.from_pydata([(-h, y, -h), (h, y, -h), (h, y, h), (-h, y, h)], [], [(0, 1, 2, 3)])
    wall = bpy.data.objects.new("Wall", mesh)
    scene.collection.objects.link(wall)
    material = bpy.data.materials.new("Wall")
    shader_nodes(material).nodes["Principled BSDF"].inputs["Base Color"].default_value = (*colour, 1.0)
    shader_nodes(material).nodes["Principled BSDF"].inputs["Roughness"].default_value = 1.0
    mesh.materials.append(material)
    return wall


def box(scene, name, centre, size, tag=None):
    """An axis-aligned cube mesh of edge `size` centred on `centre`, optionally tagged."""
    mesh = bpy.data.meshes.new(name)
    h = size / 2
    verts = [(x, y, z) for x in (-h, h) for y in (-h, h) for z in (-h, h)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh.from_pydata(verts, [], faces)
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    obj.location = centre
    scene.collection.objects.link(obj)
    if tag is not None:
        obj["stage_tag"] = tag
    return obj


def render_passes(scene, path: Path) -> dict[str, np.ndarray]:
    """Render the current frame into an uncompressed multilayer EXR and return its channels
    ('Combined.R', 'Depth.Z', ...) as top-row-first float arrays."""
    view_layer = scene.view_layers[0]
    settings = scene.render.image_settings
    set_media_type(settings, "MULTI_LAYER_IMAGE")
    settings.file_format = "OPEN_EXR_MULTILAYER"
    settings.exr_codec = "NONE"
    settings.color_depth = "32"
    if hasattr(settings, "use_exr_interleave"):  # 5.0+
        settings.use_exr_interleave = True
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    prefix = view_layer.name + "."
    return {name.removeprefix(prefix): plane for name, plane in read_exr(path).items()}


def rgb(channels: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([channels["Combined.R"], channels["Combined.G"], channels["Combined.B"]], axis=-1)


def make_take(root: Path, frames: int, width: int, height: int, *, colour, alpha=None, depth=None,
              near: float = 1.0, far: float = 3.0, frame_start: int = 1) -> Take:
    """Write a take whose frame f has colour(f) (H×W×3 uint8), alpha(f) (H×W in 0..1) and
    depth(f) (H×W metres, stored png16 between near and far)."""
    layers = {"color": Layer("png8")}
    if alpha is not None:
        layers["alpha"] = Layer("png8")
    if depth is not None:
        layers["depth"] = Layer("png16", near=near, far=far, units="m")
    info = TakeInfo(frame_start=frame_start, frame_end=frame_start + frames - 1, width=width, height=height,
                    layers=layers, stage="test")
    take = Take.create(root, info)
    for frame in info.frames:
        take.write_file("color", frame, png_bytes(np.asarray(colour(frame), np.uint8)))
        if alpha is not None:
            take.write_file("alpha", frame, png_bytes(np.round(np.clip(alpha(frame), 0, 1) * 255).astype(np.uint8)))
        if depth is not None:
            unit = np.clip((np.asarray(depth(frame)) - near) / (far - near), 0, 1)
            take.write_file("depth", frame, png_bytes(np.round(unit * 65535).astype(np.uint16)))
    return take


def solid(width: int, height: int, rgb_value) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb_value, np.uint8), (height, width, 3)).copy()


def disc(width: int, height: int) -> np.ndarray:
    """1 inside the disc inscribed in the frame, 0 outside."""
    y, x = np.mgrid[0:height, 0:width]
    cx, cy, r = (width - 1) / 2, (height - 1) / 2, min(width, height) / 2
    return ((x - cx) ** 2 + (y - cy) ** 2 <= r * r).astype(np.float32)


def render_image(scene, path: Path) -> np.ndarray:
    """Render the current frame as the final image (composited if the scene composites) into an
    uncompressed EXR and return its linear RGB, top row first."""
    settings = scene.render.image_settings
    set_media_type(settings, "IMAGE")
    settings.file_format = "OPEN_EXR"
    settings.exr_codec = "NONE"
    settings.color_depth = "32"
    settings.color_mode = "RGBA"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    planes = read_exr(path)
    return np.stack([planes["R"], planes["G"], planes["B"]], axis=-1)
