"""The final shot: 4K render settings, depth of field on a card, and the seed's camera and light
presets (a slow dolly back with a light handheld shake; a flashing coloured light).

Animation is keyframed on the objects themselves (shake as F-curve noise), so it plays in the
viewport, scrubs, and renders the same everywhere.
"""

from __future__ import annotations

import math

import bpy
from mathutils import Vector

from ..compat import engine_id, oidn_available

ENGINES = ("CYCLES", "BLENDER_EEVEE", "BLENDER_WORKBENCH")


class ShotError(ValueError):
    """A shot setting that cannot be applied; the message names the accepted values."""


def setup_final_render(
    scene: bpy.types.Scene | None = None,
    *,
    width: int = 3840,
    height: int = 2160,
    engine: str = "CYCLES",
    samples: int = 256,
    denoise: bool = True,
    filepath: str | None = None,
) -> bpy.types.Scene:
    """Set the scene to render the final shot: `width`×`height` at 100%, `engine` with `samples`
    (Cycles: adaptive sampling, OpenImageDenoise when `denoise`; EEVEE: that many TAA samples)."""
    scene = scene or bpy.context.scene
    if engine not in ENGINES:
        raise ShotError(f"engine is {engine!r}; accepted: {', '.join(ENGINES)}")
    if width < 16 or height < 16:
        raise ShotError(f"resolution {width}×{height} is too small; use at least 16×16 (3840×2160 for 4K)")
    if samples < 1:
        raise ShotError(f"samples is {samples}; use 1 or more")
    if engine == "CYCLES" and denoise and not oidn_available():  # checked before anything changes
        raise ShotError("this Blender's Cycles was built without OpenImageDenoise, so the shot cannot be denoised; "
                        "turn Denoise off, or use an official Blender build (blender.org) which has it")
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
    render.engine = engine_id(engine)
    if engine == "CYCLES":
        scene.cycles.samples = samples
        scene.cycles.use_adaptive_sampling = True
        scene.cycles.use_denoising = denoise
        if denoise:
            scene.cycles.denoiser = "OPENIMAGEDENOISE"
    elif engine == "BLENDER_EEVEE":
        scene.eevee.taa_render_samples = samples
    if filepath is not None:
        render.filepath = filepath
    return scene


def focus_on(camera: bpy.types.Object, target: bpy.types.Object, *, fstop: float = 2.8) -> bpy.types.Object:
    """Turn on the camera's depth of field, focused on the middle of `target` (a card: its centre,
    not its feet). The focus point is an empty parented to the target, so focus follows it."""
    if camera is None or camera.type != "CAMERA":
        raise ShotError(f"{getattr(camera, 'name', camera)!r} is not a camera object")
    if fstop <= 0:
        raise ShotError(f"fstop is {fstop}; use a positive f-number (lower = shallower focus)")
    name = f"Focus {target.name}"
    focus = bpy.data.objects.get(name)
    if focus is None:
        focus = bpy.data.objects.new(name, None)
        focus.empty_display_size = 0.1
        for collection in target.users_collection:
            collection.objects.link(focus)
    focus.parent = target
    focus.matrix_parent_inverse.identity()
    focus.location = sum((Vector(corner) for corner in target.bound_box), Vector()) / 8  # local centre
    dof = camera.data.dof
    dof.use_dof = True
    dof.focus_object = focus
    dof.aperture_fstop = fstop
    return focus


def dolly_back(
    camera: bpy.types.Object,
    *,
    frame_start: int,
    frame_end: int,
    distance: float = 1.0,
    shake: float = 0.01,
    shake_degrees: float = 0.3,
    shake_frames: float = 12.0,
    seed: int = 0,
) -> None:
    """Move the camera `distance` metres straight back (along its view axis) from its current place
    between the two frames, eased, with a handheld shake of about `shake` metres and
    `shake_degrees` of rotation changing over `shake_frames` frames."""
    if frame_end <= frame_start:
        raise ShotError(f"the dolly needs frame_end > frame_start, got {frame_start}..{frame_end}")
    if shake < 0 or shake_degrees < 0 or shake_frames <= 0:
        raise ShotError("shake and shake_degrees must be >= 0 and shake_frames > 0")
    start = camera.location.copy()
    # a camera looks down its -Z; matrix_basis is current (matrix_world waits for an update)
    backwards = camera.matrix_basis.to_3x3() @ Vector((0.0, 0.0, 1.0))
    camera.location = start
    camera.keyframe_insert("location", frame=frame_start)
    camera.location = start + backwards.normalized() * distance
    camera.keyframe_insert("location", frame=frame_end)
    camera.location = start
    camera.keyframe_insert("rotation_euler", frame=frame_start)

    for fcurve in _fcurves(camera):
        if fcurve.data_path not in ("location", "rotation_euler"):
            continue
        for modifier in [m for m in fcurve.modifiers if m.type == "NOISE"]:
            fcurve.modifiers.remove(modifier)
        amplitude = shake if fcurve.data_path == "location" else math.radians(shake_degrees)
        if amplitude == 0:
            continue
        noise = fcurve.modifiers.new("NOISE")
        noise.blend_type = "REPLACE"  # adds (noise - 0.5) * strength: centred on the path, ±amplitude
        noise.strength = 2 * amplitude
        noise.scale = shake_frames
        noise.phase = 1 + seed * 7.31 + fcurve.array_index * 3.17 + (10 if fcurve.data_path == "rotation_euler" else 0)


def flashing_light(
    scene: bpy.types.Scene | None = None,
    *,
    location=(0.0, -2.0, 2.0),
    colours=((1.0, 0.05, 0.02),),
    energy: float = 500.0,
    off_energy: float = 0.0,
    frame_start: int = 1,
    frame_end: int = 250,
    period: int = 12,
    on_frames: int = 3,
    radius: float = 0.1,
) -> bpy.types.Object:
    """A point light that flashes: `energy` watts for `on_frames` frames every `period` frames,
    `off_energy` between; each flash takes the next colour of `colours`. Keys hold (constant)."""
    scene = scene or bpy.context.scene
    if period < 1 or not 1 <= on_frames <= period:
        raise ShotError(f"need period >= 1 and 1 <= on_frames <= period, got period={period}, on_frames={on_frames}")
    if not colours:
        raise ShotError("colours is empty; give at least one (r, g, b)")
    data = bpy.data.lights.new("Flash", type="POINT")
    data.shadow_soft_size = radius
    light = bpy.data.objects.new("Flash", data)
    light.location = location
    scene.collection.objects.link(light)
    for n, flash in enumerate(range(frame_start, frame_end + 1, period)):
        data.energy = energy
        data.color = colours[n % len(colours)]
        data.keyframe_insert("energy", frame=flash)
        data.keyframe_insert("color", frame=flash)
        if on_frames < period:
            data.energy = off_energy
            data.keyframe_insert("energy", frame=flash + on_frames)
    for fcurve in _fcurves(data):
        for key in fcurve.keyframe_points:
            key.interpolation = "CONSTANT"
    return light


def _fcurves(owner):
    from bpy_extras import anim_utils

    animation = owner.animation_data
    if animation is None or animation.action is None:
        return []
    channelbag = anim_utils.action_get_channelbag_for_slot(animation.action, animation.action_slot)
    return list(channelbag.fcurves) if channelbag else []
