"""stage.stylize_scene: render the scene's colour and passes, diffuse them on the backend, and set up
the compositor so the diffused object shows over the base render."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

from ..footage import take_source
from ..ipc import Client
from ..jobs.driver import JobDriver
from ..jobs.plan import JobSpec, Plan, diffuse_params, pass_layers
from ..preferences import client_keys, get_prefs
from ..properties import settings_dict
from ..scene.composite import build_stylize_compositor
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
        plain = settings_dict(settings)
        params = diffuse_params(plain)
        layers = pass_layers(plain)
        if settings.stylize_object is None:
            raise ValueError("choose the object to stylize (Stage > Prompt & model > Object)")
        root = takes_root(context) / take_name(self.name)
        # The passes render here, in the foreground, as F12 does; the diffusion then runs on the timer.
        passes = render_pass_take(scene, root / "passes", scene.frame_start, scene.frame_end, layers)
        source = take_source(passes.root, layers)
        plan = Plan([JobSpec("diffuse", "diffuse", params, source.frames, ("color",))])
        driver = JobDriver(plan, source, root / "diffused", lambda: Client(prefs.address, keys=keys))
        obj_name = settings.stylize_object.name

        def composite(context):
            s = context.scene.stage
            build_stylize_compositor(context.scene, driver.take_dir, [context.scene.objects[obj_name]],
                                     grow=s.mask_grow, feather=s.mask_feather, blend=s.blend_mode,
                                     factor=s.blend_factor, frame_start=driver.take.info.frame_start)
            return f"{obj_name} stylized: the compositor shows {driver.take_dir} over the render"

        return JobRunner(driver, "Stylize", on_done=composite)


