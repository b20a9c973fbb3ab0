"""stage.import_footage: footage of a person -> backend jobs (matte, depth, diffusion, relight; the colour
upscaled to the rendered frame's height when the footage is shorter) -> take -> card."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import IntProperty, StringProperty

from ..footage import footage_source, read_image
from ..ipc import Client
from ..jobs.driver import JobDriver
from ..jobs.plan import footage_plan
from ..preferences import client_keys, get_prefs
from ..properties import settings_dict
from ..scene.cards import make_card
from .backend_status import backend_stages
from .modal_job import JobOperator, JobRunner
from .paths import take_name, takes_root


class STAGE_OT_import_footage(JobOperator, bpy.types.Operator):
    """Send footage to the backend (matte, depth, diffusion) and make a character card from the result"""

    bl_idname = "stage.import_footage"
    bl_label = "Import Footage"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Footage", subtype="FILE_PATH",
                             description="a video file, or a folder of numbered images or one image of it (default: Stage > Cards)")
    name: StringProperty(name="Take Name", description="the take's folder name (default: the footage's)")
    frame_first: IntProperty(name="First Frame", default=-1, description="-1: the footage's first")
    frame_last: IntProperty(name="Last Frame", default=-1, description="-1: the footage's last")

    def make_runner(self, context) -> JobRunner:
        runner = footage_runner(context, self.filepath, name=self.name,
                                first=None if self.frame_first < 0 else self.frame_first,
                                last=None if self.frame_last < 0 else self.frame_last)
        for note in runner.driver.plan.notes:
            self.report({"WARNING"}, note)
        return runner


def _image_path(used: bool, field: str, what: str, fix: str) -> str:
    """A side image's field as an absolute path ("" when unused or empty), or a ValueError naming it and the fix."""
    if not (used and field):
        return ""
    path = bpy.path.abspath(field)
    if not Path(path).is_file():
        raise ValueError(f"{what} {path} is not a file; {fix}")
    return path


def footage_runner(context, filepath: str = "", *, name: str = "", first: int | None = None,
                   last: int | None = None) -> JobRunner:
    """The import's whole job (footage -> backend jobs -> take -> card) as a JobRunner: the operator's
    modal timer and EXEC both drive it, and so can scripts."""
    scene = context.scene
    settings = scene.stage
    prefs = get_prefs(context)
    keys = client_keys(prefs)
    path = bpy.path.abspath(filepath or settings.footage_path)
    if not path:
        raise ValueError("choose the footage: Stage > Cards > Footage (a video file or a folder of numbered images)")
    source = footage_source(path, scene.render.fps / scene.render.fps_base, first, last,
                            video_cache=takes_root(context) / ".video_frames")
    frame_height = round(scene.render.resolution_y * scene.render.resolution_percentage / 100)
    wanted = settings_dict(settings)
    wanted["clean_plate"] = _image_path(settings.use_matte, settings.clean_plate, "the clean plate",
                                        "choose an image of the empty screen in Stage > Cards > Clean plate, or clear it")
    wanted["character_image"] = _image_path(
        settings.use_diffusion and settings.engine != "KEYFRAMES", settings.character_image, "the character image",
        "choose an image of the character in Stage > Prompt & Model > Character, or clear it to use the first "
        "diffused keyframe")
    plan = footage_plan(wanted, source.frames, backend_stages(context), heights=(source.size[1], frame_height))
    take_dir = takes_root(context) / take_name(name or _footage_name(source.description))
    driver = JobDriver(plan, source, take_dir, lambda: Client(prefs.address, keys=keys),
                       read_layer=_read_layer, read_image=read_image)
    character_height, depth_scale, shadow = settings.character_height, settings.card_depth_scale, settings.card_shadow

    def make(context) -> str:
        card = make_card(take_dir, character_height=character_height, depth_scale=depth_scale, scene=context.scene,
                         shadow=shadow)
        return f"card {card.name} from {take_dir}"

    return JobRunner(driver, "Import footage", on_done=make)


def _read_layer(take, layer: str, frame: int):
    """An earlier job's frame as the next job's input (the upscale job reads the matte's colour and alpha)."""
    from ..scene.frames import read_frame

    values = read_frame(take, layer, frame)
    return values.astype("float32") / 255.0 if layer == "alpha" and values.dtype.name == "uint8" else values


def _footage_name(description: dict) -> str:
    path = Path(description["path"])
    return path.stem if description.get("kind") == "video" else path.name
