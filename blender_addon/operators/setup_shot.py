"""stage.setup_shot: final render settings, depth of field on the focus card, and the seed's presets
(scene/shot.py does the work)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, IntVectorProperty

from ..compat import oidn_available
from ..scene.restore import Rollback
from ..scene.shot import ENGINES, ShotError, dolly_back, flashing_light, focus_on, setup_final_render


class STAGE_OT_setup_shot(bpy.types.Operator):
    """Set up the final shot (asks first): resolution, engine and samples, denoising, depth of field on the focus card, preset"""

    bl_idname = "stage.setup_shot"
    bl_label = "Set Up Shot"
    bl_options = {"REGISTER", "UNDO"}

    resolution: IntVectorProperty(name="Resolution", size=2, default=(3840, 2160), min=16,
                                  description="width and height of the final render in pixels (3840×2160: 4K)")
    engine: EnumProperty(name="Engine", items=[(e, e.replace("BLENDER_", "").title(), "") for e in ENGINES],
                         default="CYCLES")
    samples: IntProperty(name="Samples", default=256, min=1)
    denoise: BoolProperty(name="Denoise", default=True, description="Cycles: denoise with OpenImageDenoise")

    def execute(self, context):
        scene = context.scene
        settings = scene.stage
        camera = scene.camera
        # everything that can refuse is checked before the first setting changes
        problem = None
        if self.engine == "CYCLES" and self.denoise and not oidn_available():
            problem = ("this Blender's Cycles has no OpenImageDenoise, so nothing was changed; untick Denoise, "
                       "or use an official Blender build (blender.org), which has it")
        elif settings.focus_card is not None and camera is None:
            problem = "the scene has no active camera to focus; add one and make it active (nothing was changed)"
        elif settings.shot_preset == "DOLLY" and camera is None:
            problem = "the dolly preset moves the active camera; the scene has none (nothing was changed)"
        if problem:
            self.report({"ERROR"}, f"Set Up Shot: {problem}")
            return {"CANCELLED"}
        render, cycles = scene.render, scene.cycles
        try:
            with Rollback() as undo:  # a later failure puts the render settings back and removes what it made
                for owner, attr in ((render, "resolution_x"), (render, "resolution_y"),
                                    (render, "resolution_percentage"), (render, "engine"), (cycles, "samples"),
                                    (cycles, "use_adaptive_sampling"), (cycles, "use_denoising"),
                                    (cycles, "denoiser"), (scene.eevee, "taa_render_samples")):
                    undo.set(owner, attr, getattr(owner, attr))  # remembered as they are
                if camera is not None and camera.type == "CAMERA":
                    for attr in ("use_dof", "focus_object", "aperture_fstop"):
                        undo.set(camera.data.dof, attr, getattr(camera.data.dof, attr))
                setup_final_render(scene, width=self.resolution[0], height=self.resolution[1], engine=self.engine,
                                   samples=self.samples, denoise=self.denoise)
                if settings.focus_card is not None:
                    focus_on(camera, settings.focus_card)
                if settings.shot_preset == "DOLLY":
                    dolly_back(camera, frame_start=scene.frame_start, frame_end=scene.frame_end)
                elif settings.shot_preset == "FLASH":
                    flashing_light(scene, frame_start=scene.frame_start, frame_end=scene.frame_end)
        except ShotError as e:
            self.report({"ERROR"}, f"Set Up Shot: {e}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"shot: {self.resolution[0]}x{self.resolution[1]}, {self.engine}, {self.samples} samples")
        return {"FINISHED"}

    def invoke(self, context, event):
        # 4K at 256 samples is hours of rendering: show the settings and let the artist confirm them
        return context.window_manager.invoke_props_dialog(self, width=320)
