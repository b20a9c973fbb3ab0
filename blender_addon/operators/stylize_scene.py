"""stage.stylize_scene: render the scene's colour and passes, diffuse them on the backend, and set up
the compositor so the diffused object shows over the base render."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

from ..compositing import stylize_compositor
from ..footage import take_source
from ..ipc import Client
from ..jobs.driver import JobDriver
from ..jobs.plan import JobSpec, Plan, diffuse_params
from ..preferences import client_keys, get_prefs
from ..properties import settings_dict
from .backend_status import backend_stages
from .modal_job import JobOperator, JobRunner
from .paths import take_name, takes_root
from .render_passes import render_pass_take


class STAGE_OT_stylize_scene(JobOperator, bpy.types.Operator):
    """Diffuse the scene's render with the prompt and ControlNet units, and composite one object's
    diffused version over the base render"""

    bl_idname = "stage.stylize_scene"
    bl_label = "Stylize Scene"

    name: StringProperty(name="Take Name", default="stylized")

    def make_runner(self, context) -> JobRunner:
        scene = context.scene
        settings = scene.stage
        prefs = get_prefs(context)
        keys = client_keys(prefs)
        stages = backend_stages(context)
        if stages is not None and "diffuse" not in stages:
            raise ValueError(f"the backend has no 'diffuse' stage (it has {', '.join(stages)}); update it")
        params = diffuse_params(settings_dict(settings))
        if settings.stylize_object is None:
            raise ValueError("choose the object to stylize (Stage > Prompt & model > Object)")
        root = takes_root(context) / take_name(self.name)
        passes = render_pass_take(scene, root / "passes", scene.frame_start, scene.frame_end)
        source = take_source(passes.root)
        plan = Plan([JobSpec("diffuse", "diffuse", params, source.frames, ("color",))])
        driver = JobDriver(plan, source, root / "diffused", lambda: Client(prefs.address, keys=keys))
        obj_name = settings.stylize_object.name

        def composite(context):
            take = driver.take
            s = context.scene.stage
            stylize_compositor(context.scene, take.path("color", take.info.frame_start), context.scene.objects[obj_name],
                               grow=s.mask_grow, feather=s.mask_feather, blend=s.blend_mode, factor=s.blend_factor,
                               frame_start=take.info.frame_start, frames=len(take.info.frames))

        return JobRunner(driver, "Stylize", on_done=composite)


