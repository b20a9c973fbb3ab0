"""stage.setup_shot: final render settings, depth of field on the focus card, and the seed's presets
(scene/shot.py does the work)."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, IntProperty

from ..scene.shot import ENGINES, ShotError, dolly_back, flashing_light, focus_on, setup_final_render


class STAGE_OT_setup_shot(bpy.types.Operator):
    """Set up the final shot: 3840x2160, engine and samples, denoising, depth of field on the focus card, preset"""

    bl_idname = "stage.setup_shot"
    bl_label = "Set Up Shot"
    bl_options = {"REGISTER", "UNDO"}

    width: IntProperty(name="Width", default=3840, min=16)
    height: IntProperty(name="Height", default=2160, min=16)
    engine: EnumProperty(name="Engine", items=[(e, e.replace("BLENDER_", "").title(), "") for e in ENGINES],
                         default="CYCLES")
    samples: IntProperty(name="Samples", default=256, min=1)

    def execute(self, context):
        scene = context.scene
        settings = scene.stage
        try:
            setup_final_render(scene, width=self.width, height=self.height, engine=self.engine, samples=self.samples)
            camera = scene.camera
            if settings.focus_card is not None:
                if camera is None:
                    raise ShotError("the scene has no active camera to focus; add one and make it active")
                focus_on(camera, settings.focus_card)
            if settings.shot_preset == "DOLLY":
                if camera is None:
                    raise ShotError("the dolly preset moves the active camera; the scene has none")
                dolly_back(camera, frame_start=scene.frame_start, frame_end=scene.frame_end)
            elif settings.shot_preset == "FLASH":
                flashing_light(scene, frame_start=scene.frame_start, frame_end=scene.frame_end)
        except ShotError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"shot: {self.width}x{self.height}, {self.engine}, {self.samples} samples")
        return {"FINISHED"}
