"""Small bpy helpers the sample scenes share: a clean scene, primitives, materials, keys, render setup."""

from __future__ import annotations

import bpy


def fresh_scene(scene: bpy.types.Scene | None = None, name: str = "Scene") -> bpy.types.Scene:
    """`scene` emptied of objects, or a new scene when none is given (with a world of its own)."""
    if scene is None:
        scene = bpy.data.scenes.new(name)
    for obj in list(scene.collection.all_objects):
        bpy.data.objects.remove(obj, do_unlink=True)
    if scene.world is None:
        scene.world = bpy.data.worlds.new(f"{scene.name} World")
    for window in getattr(bpy.context, "window_manager", None).windows if bpy.context.window_manager else ():
        window.scene = scene
    return scene


def world_colour(scene: bpy.types.Scene, rgb, strength: float = 1.0) -> None:
    world = scene.world
    world.color = rgb  # Workbench reads this one
    if world.node_tree is None:
        world.use_nodes = True
    background = world.node_tree.nodes.get("Background")
    if background is None:
        background = world.node_tree.nodes.new("ShaderNodeBackground")
        output = world.node_tree.nodes.get("World Output") or world.node_tree.nodes.new("ShaderNodeOutputWorld")
        world.node_tree.links.new(background.outputs[0], output.inputs["Surface"])
    background.inputs["Color"].default_value = (*rgb, 1.0)
    background.inputs["Strength"].default_value = strength


def material(name: str, rgb, roughness: float = 0.8, emission: float = 0.0) -> bpy.types.Material:
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    mat.diffuse_color = (*rgb, 1.0)  # Workbench's material colour
    if mat.node_tree is None:
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = (*rgb, 1.0)
        bsdf.inputs["Roughness"].default_value = roughness
        if emission:
            bsdf.inputs["Emission Color"].default_value = (*rgb, 1.0)
            bsdf.inputs["Emission Strength"].default_value = emission
    return mat


def link(scene: bpy.types.Scene, obj: bpy.types.Object, parent: bpy.types.Object | None = None) -> bpy.types.Object:
    scene.collection.objects.link(obj)
    if parent is not None:
        obj.parent = parent
    return obj


def empty(scene, name: str, location=(0, 0, 0), parent=None, size: float = 0.2) -> bpy.types.Object:
    obj = bpy.data.objects.new(name, None)
    obj.empty_display_size = size
    obj.location = location
    return link(scene, obj, parent)


def _mesh_object(scene, name: str, mesh: bpy.types.Mesh, location, parent, mat) -> bpy.types.Object:
    obj = bpy.data.objects.new(name, mesh)
    obj.location = location
    if mat is not None:
        mesh.materials.append(mat)
    return link(scene, obj, parent)


def box(scene, name: str, size, location=(0, 0, 0), parent=None, mat=None) -> bpy.types.Object:
    """An axis-aligned box `size` = (x, y, z) metres, centred on `location`."""
    import bmesh

    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=1.0)
    bmesh.ops.scale(bm, vec=size, verts=bm.verts)
    bm.to_mesh(mesh)
    bm.free()
    return _mesh_object(scene, name, mesh, location, parent, mat)


def ball(scene, name: str, radius: float, location=(0, 0, 0), parent=None, mat=None, segments: int = 12):
    import bmesh

    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=segments, v_segments=segments // 2, radius=radius)
    bm.to_mesh(mesh)
    bm.free()
    for poly in mesh.polygons:
        poly.use_smooth = True
    return _mesh_object(scene, name, mesh, location, parent, mat)


def cone(scene, name: str, radius1: float, radius2: float, depth: float, location=(0, 0, 0), parent=None,
         mat=None, segments: int = 10, base_at_origin: bool = False):
    """A cylinder (radius1 == radius2) or cone along Z; `base_at_origin` hangs it from its top end instead."""
    import bmesh

    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new()
    bmesh.ops.create_cone(bm, cap_ends=True, segments=segments, radius1=radius1, radius2=radius2, depth=depth)
    if base_at_origin:
        bmesh.ops.translate(bm, vec=(0, 0, -depth / 2), verts=bm.verts)
    bm.to_mesh(mesh)
    bm.free()
    return _mesh_object(scene, name, mesh, location, parent, mat)


def plane(scene, name: str, size_x: float, size_y: float, location=(0, 0, 0), rotation=(0, 0, 0), mat=None):
    import bmesh

    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new()
    bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=0.5)
    bmesh.ops.scale(bm, vec=(size_x, size_y, 1), verts=bm.verts)
    bm.to_mesh(mesh)
    bm.free()
    obj = _mesh_object(scene, name, mesh, location, None, mat)
    obj.rotation_euler = rotation
    return obj


def key(obj, path: str, frame: float, value, index: int = -1) -> None:
    """Set `obj.path` (or one component of it) to `value` and keyframe it at `frame`."""
    target = obj
    *parents, leaf = path.split(".")
    for part in parents:
        target = getattr(target, part)
    if index >= 0:
        getattr(target, leaf)[index] = value
    else:
        setattr(target, leaf, value)
    target.keyframe_insert(leaf, frame=frame, index=index)


def camera(scene, name: str, location, lens: float = 35.0) -> bpy.types.Object:
    data = bpy.data.cameras.new(name)
    data.lens = lens
    data.clip_start = 0.05
    data.clip_end = 200.0
    obj = link(scene, bpy.data.objects.new(name, data))
    obj.location = location
    scene.camera = obj
    return obj


def aim(obj: bpy.types.Object, target: bpy.types.Object) -> None:
    """Keep `obj` pointed at `target` (a Track To constraint: -Z forward, Y up, like a camera)."""
    constraint = obj.constraints.new("TRACK_TO")
    constraint.target = target
    constraint.track_axis = "TRACK_NEGATIVE_Z"
    constraint.up_axis = "UP_Y"


def light(scene, name: str, kind: str, location, energy: float, rgb=(1, 1, 1), size: float = 0.5, rotation=None):
    data = bpy.data.lights.new(name, kind)
    data.energy = energy
    data.color = rgb
    if hasattr(data, "shadow_soft_size"):
        data.shadow_soft_size = size
    obj = link(scene, bpy.data.objects.new(name, data))
    obj.location = location
    if rotation is not None:
        obj.rotation_euler = rotation
    return obj


def cycles(scene, size=(1280, 720), samples: int = 16, threads: int = 0) -> None:
    """Cycles on the CPU, few samples, denoised; small bounce counts keep the flash room quick."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = True
    scene.cycles.max_bounces = 3
    scene.cycles.diffuse_bounces = 1
    scene.cycles.glossy_bounces = 1
    scene.cycles.transmission_bounces = 2
    scene.cycles.transparent_max_bounces = 8
    scene.cycles.seed = 1
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.fps = 24
    if threads:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = threads
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"


