"""stage.render_passes: render the active camera's exact control maps into a take (scene/passes.py)."""

from __future__ import annotations

import bpy
from bpy.props import IntProperty, StringProperty

from .paths import take_name, takes_root


class STAGE_OT_render_passes(bpy.types.Operator):
    """Render depth, normals, segmentation, line art and pose for the frame range into a take"""

    bl_idname = "stage.render_passes"
    bl_label = "Render Passes"

    name: StringProperty(name="Take Name", default="passes")
    frame_first: IntProperty(name="First Frame", default=-1, description="-1: the scene's start")
    frame_last: IntProperty(name="Last Frame", default=-1, description="-1: the scene's end")

    def execute(self, context):
        scene = context.scene
        if scene.camera is None:
            self.report({"ERROR"}, "the scene has no active camera; add one and make it active (Ctrl Numpad 0)")
            return {"CANCELLED"}
        first = scene.frame_start if self.frame_first < 0 else self.frame_first
        last = scene.frame_end if self.frame_last < 0 else self.frame_last
        try:
            take_dir = takes_root(context) / take_name(self.name)
            take = render_pass_take(scene, take_dir, first, last)
        except (ValueError, RuntimeError, OSError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"passes of frames {first}-{last} in {take_dir}")
        return {"FINISHED"} if take is not None else {"CANCELLED"}


def render_pass_take(scene, take_dir, first: int, last: int):
    """scene/passes.py renders the passes; imported here so the add-on registers without it."""
    try:
        from ..scene import passes
    except ImportError as e:
        raise RuntimeError(f"this build of the add-on has no pass renderer (scene/passes.py): {e}") from None
    return passes.render_passes(scene, take_dir, frame_start=first, frame_end=last)
