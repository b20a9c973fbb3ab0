"""stage.setup_shot: final render settings and camera (scene/shot.py)."""

from __future__ import annotations

import bpy


class STAGE_OT_setup_shot(bpy.types.Operator):
    """Set up the final shot: 3840x2160, engine and samples, denoising, depth of field on the focus card, preset"""

    bl_idname = "stage.setup_shot"
    bl_label = "Set Up Shot"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        scene = context.scene
        settings = scene.stage
        try:
            from ..scene import shot
        except ImportError as e:
            self.report({"ERROR"}, f"this build of the add-on has no shot set-up (scene/shot.py): {e}")
            return {"CANCELLED"}
        try:
            shot.setup_shot(scene, focus=settings.focus_card,
                            preset=None if settings.shot_preset == "NONE" else settings.shot_preset)
        except (ValueError, RuntimeError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, "shot set up")
        return {"FINISHED"}
