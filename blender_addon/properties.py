"""Settings the artist edits (`scene.stage`) and what the add-on reports back (`window_manager.stage_status`)."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

from .scene import composite

SAMPLERS = ["Euler a", "Euler", "DPM++ 2M Karras", "DPM++ 2M SDE Karras", "DDIM", "UniPC", "LCM"]
CONTROL_TYPES = [
    ("depth", "Depth", "depth map (from the Z pass, or estimated)"),
    ("normal", "Normal", "normal map"),
    ("lineart", "Line art", "lines drawn from the scene or the frame"),
    ("softedge", "Soft edge", "soft edges (HED)"),
    ("canny", "Canny", "hard edges of the frame"),
    ("openpose", "OpenPose", "pose skeletons from armatures or the frame"),
    ("segmentation", "Segmentation", "object classes by tag colour"),
    ("scribble", "Scribble", "scribble lines"),
    ("mlsd", "MLSD", "straight lines"),
]
CONTROL_SOURCES = [
    ("auto", "Auto", "the rendered pass when there is one, else the backend's annotator"),
    ("map", "Rendered pass", "the pass Stage rendered from the scene (exact)"),
    ("annotator", "Annotator", "estimated by the backend from the colour frame"),
]
KEYFRAME_MODES = [
    ("INTERVAL", "Every N frames", "diffuse every N-th frame and propagate between them"),
    ("ALL", "Every frame", "diffuse every frame"),
    ("ENDS", "First and last", "diffuse the first and last frames only"),
]
ENGINES = [
    ("KEYFRAMES", "Keyframes + flow", "keyframes diffused in grids, every frame rebuilt by optical flow: low memory, "
                                      "runs on a CPU"),
    ("VACE", "Wan VACE", "video diffusion that restyles the footage keeping its structure, the diffused keyframes "
                         "pinned (role 'vace'; 8 GB+ GPU)"),
    ("ANIMATE", "Wan-Animate", "video diffusion: the first diffused keyframe's character performs the footage "
                               "(role 'animate'; 24 GB+ GPU)"),
]
BLEND_MODES = [(m, m.title().replace("_", " "), "") for m in composite.BLEND_MODES]
CARD_SHADOWS = [
    ("BLENDER", "Blender's", "the card casts its shadow from the scene's lights, through the matte"),
    ("FILMED", "Filmed", "the screen's darkening under the figure, as filmed (the matte's shadow layer), laid on the "
                         "floor under the card; the card casts none"),
    ("BOTH", "Both", "the filmed shadow on the floor and the card's own shadow from the scene's lights"),
]


class StageLora(bpy.types.PropertyGroup):
    enabled: BoolProperty(name="Enabled", default=True)
    name: StringProperty(name="LoRA", description="model config role lora.<name>, or the full role")
    strength: FloatProperty(name="Strength", default=1.0, min=-4.0, max=4.0)


class StageControlUnit(bpy.types.PropertyGroup):
    enabled: BoolProperty(name="Enabled", default=True)
    type: EnumProperty(name="Type", items=CONTROL_TYPES, default="depth")
    weight: FloatProperty(name="Weight", default=1.0, min=0.0, max=2.0)
    start: FloatProperty(name="Start", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    end: FloatProperty(name="End", default=1.0, min=0.0, max=1.0, subtype="FACTOR")
    source: EnumProperty(name="Source", items=CONTROL_SOURCES, default="auto")


class StageSettings(bpy.types.PropertyGroup):
    # prompt & model
    prompt: StringProperty(name="Prompt", description="what the backend paints")
    negative_prompt: StringProperty(name="Negative", description="what to avoid")
    checkpoint: StringProperty(name="Checkpoint", description="model config role of the checkpoint (empty: 'checkpoint')")
    engine: EnumProperty(name="Engine", items=ENGINES, default="KEYFRAMES",
                         description="how Diffuse makes the character's frames")
    video_size: IntProperty(name="Video size", default=832, min=16, max=2048, step=16,
                            description="video engines: long side of the generated video (832: 480p, 1280: 720p); "
                                        "a multiple of 16")
    loras: CollectionProperty(type=StageLora)
    lora_index: IntProperty()
    sampler: EnumProperty(name="Sampler", items=[(s, s, "") for s in SAMPLERS], default="Euler a")
    seed: IntProperty(name="Seed", default=0, min=0)
    steps: IntProperty(name="Steps", default=20, min=1, max=150)
    cfg: FloatProperty(name="CFG", default=7.0, min=0.0, max=30.0)
    denoise: FloatProperty(name="Denoise", default=0.6, min=0.0, max=1.0, subtype="FACTOR",
                           description="0 keeps the frame, 1 repaints it entirely")
    # ControlNet
    controls: CollectionProperty(type=StageControlUnit)
    control_index: IntProperty()
    # temporal
    keyframe_mode: EnumProperty(name="Keyframes", items=KEYFRAME_MODES, default="INTERVAL")
    keyframe_interval: IntProperty(name="Interval", default=8, min=1, max=240)
    stability: FloatProperty(name="Stability", default=0.0, min=0.0, max=1.0, subtype="FACTOR",
                             description="0: every frame propagated from the keyframes (steady); "
                                         "1: every frame diffused on its own (the flickering 'stroboscope' look)")
    # footage and cards
    takes_dir: StringProperty(name="Takes", subtype="DIR_PATH", default="//takes/",
                              description="where takes are written (relative to the .blend with //)")
    footage_path: StringProperty(name="Footage", subtype="FILE_PATH",
                                 description="a video file, a folder of numbered images, or one image of the sequence")
    use_matte: BoolProperty(name="Matte", default=True, description="cut the person out (chroma key)")
    screen: EnumProperty(name="Screen", items=[("green", "Green", ""), ("blue", "Blue", "")], default="green")
    clean_plate: StringProperty(name="Clean plate", subtype="FILE_PATH",
                                description="an image of the empty screen, same camera and light (optional): the "
                                            "matte keys against it, and the filmed shadow holds only the figure's "
                                            "shadow, not the screen's own shading")
    matte_grow: IntProperty(name="Grow", default=0, min=-64, max=64)
    matte_feather: FloatProperty(name="Feather", default=0.0, min=0.0, max=64.0)
    use_depth: BoolProperty(name="Depth", default=False, description="estimate a depth map for displacement")
    use_diffusion: BoolProperty(name="Diffuse", default=False, description="restyle the footage with the prompt")
    character_image: StringProperty(name="Character", subtype="FILE_PATH",
                                    description="an image of the character, for a video engine (optional): Wan-Animate "
                                                "makes it perform the footage, VACE takes it as its reference; empty: "
                                                "the first diffused keyframe")
    texture_upscale: EnumProperty(
        name="Textures", default="PREVIEW",
        items=[("PREVIEW", "Resample", "footage shorter than the rendered frame: colour and albedo resampled (Lanczos) "
                                       "to its height; a labelled preview of real upscaling"),
               ("MODEL", "Upscaler", "the backend's upscaler model (Swin2SR / SD x4) brings them to the frame's height"),
               ("OFF", "Off", "the card keeps the footage's resolution")],
        description="how the card's textures reach the rendered frame's height")
    use_relight: BoolProperty(name="Relight", default=False,
                              description="estimate normals and albedo (Marigold models) so the card is shaded like a "
                                          "body by the scene's lights")
    character_height: FloatProperty(name="Character height", default=1.8, min=0.01, unit="LENGTH",
                                    description="the character's height in metres, measured on the take's matte; "
                                                "the card's frame is sized to match")
    card_depth_scale: FloatProperty(name="Depth scale", default=0.25, min=0.0, unit="LENGTH")
    card_shadow: EnumProperty(name="Shadow", items=CARD_SHADOWS, default="BLENDER",
                              description="the card's shadow on the floor: Filmed and Both need a take with a shadow "
                                          "layer (Import Footage asks the matte for one; green/blue screen)")
    # stylize / compositing
    mask_grow: IntProperty(name="Mask grow", default=0, min=-64, max=64,
                           description="pixels the object's mask grows (negative: shrinks) before compositing")
    mask_feather: FloatProperty(name="Mask feather", default=0.0, min=0.0, max=64.0,
                                description="blur radius of the mask's edge in pixels (0: hard edge)")
    blend_mode: EnumProperty(name="Blend", items=BLEND_MODES, default="MIX")
    blend_factor: FloatProperty(name="Factor", default=1.0, min=0.0, max=1.0, subtype="FACTOR",
                                description="0: the render only; 1: the full diffused image inside the mask")
    stylize_object: PointerProperty(name="Object", type=bpy.types.Object,
                                    description="the object whose diffused version shows over the render")
    # shot
    focus_card: PointerProperty(name="Focus", type=bpy.types.Object, description="card the camera focuses on")
    shot_preset: EnumProperty(name="Preset", items=[("NONE", "None", ""), ("DOLLY", "Dolly back + shake", ""),
                                                    ("FLASH", "Flashing light", "")], default="NONE")


class StageStatus(bpy.types.PropertyGroup):
    """Runtime state for the panels (not meant to be edited)."""

    connected: BoolProperty(name="Connected")
    address: StringProperty()
    device: StringProperty(name="Device")
    stages: StringProperty(name="Stages")
    busy: StringProperty(name="Busy with")
    message: StringProperty()
    job_running: BoolProperty()
    job_label: StringProperty()
    job_progress: FloatProperty(min=0.0, max=1.0, subtype="FACTOR")


def settings_dict(settings: StageSettings) -> dict:
    """The settings as a plain dict, for the bpy-free job planning in jobs/plan.py."""
    plain = {name: getattr(settings, name) for name in (
        "prompt", "negative_prompt", "checkpoint", "sampler", "seed", "steps", "cfg", "denoise", "keyframe_mode",
        "keyframe_interval", "stability", "use_matte", "screen", "matte_grow", "matte_feather", "use_depth",
        "use_diffusion", "use_relight", "texture_upscale", "engine", "video_size", "card_shadow", "clean_plate",
        "character_image")}
    plain["controls"] = [{k: getattr(u, k) for k in ("enabled", "type", "weight", "start", "end", "source")}
                         for u in settings.controls]
    plain["loras"] = [{k: getattr(lora, k) for k in ("enabled", "name", "strength")} for lora in settings.loras]
    return plain


classes = (StageLora, StageControlUnit, StageSettings, StageStatus)


def attach() -> None:
    bpy.types.Scene.stage = PointerProperty(type=StageSettings)
    bpy.types.WindowManager.stage_status = PointerProperty(type=StageStatus)


def detach() -> None:
    del bpy.types.WindowManager.stage_status
    del bpy.types.Scene.stage
