"""Exact control maps of a camera's view, rendered with Cycles and written as a take.

One Cycles render per frame gives every map: its view layer passes (Z, normal, object and material
index, Freestyle when asked) go to
an uncompressed multilayer EXR that `imagefiles.read_exr` reads back, and the colour is saved from
the same Render Result through the scene's view transform. Layers of the take:

    color         8-bit RGB, as the scene's colour management displays it
    depth         distance along the camera's axis in metres: "exr" (float) or "png16" with near/far
    normal        8-bit RGB, camera-space normal (x right, y up, z toward the camera) as (n + 1) / 2;
                  black where no surface is
    segmentation  8-bit RGB, each object's colour by its tag (custom property `stage_tag` on the
                  object, or on a material for that material's faces); untagged is black; the
                  palette is saved in take.json under params["segmentation_palette"]
    lineart       8-bit grey, white lines on black: EDGES (where depth jumps, the surface bends or
                  the object changes) or FREESTYLE (Blender's line renderer, the view layer's own
                  line sets when it has some)
    pose          8-bit RGB, the OpenPose skeletons of the scene's armatures (see pose.py)

The scene is left as it was found: every setting changed for the render is restored.
"""

from __future__ import annotations

import colorsys
import hashlib
import tempfile
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np

from backend.ipc.take import Layer, Take, TakeInfo
from . import pose
from .card_shadow import DECAL_FLAG
from ..compat import media_type_settings, set_media_type
from backend.ipc.imagefiles import exr_bytes, png_bytes, read_exr

LAYERS = ("color", "depth", "normal", "segmentation", "lineart", "pose")
DEPTH_FORMATS = ("exr", "png16")
LINEART_METHODS = ("EDGES", "FREESTYLE")
BACKGROUND_DEPTH = 1e9  # Cycles writes 1e10 where a ray hits nothing

# ADE20K colours (what ControlNet's segmentation model was trained on; the first 24 classes of the
# palette controlnet_aux uses) for common tags
ADE20K = {
    "wall": (120, 120, 120), "building": (180, 120, 120), "sky": (6, 230, 230), "floor": (80, 50, 50),
    "tree": (4, 200, 3), "ceiling": (120, 120, 80), "road": (140, 140, 140), "bed": (204, 5, 255),
    "window": (230, 230, 230), "grass": (4, 250, 7), "cabinet": (224, 5, 255), "sidewalk": (235, 255, 7),
    "person": (150, 5, 61), "earth": (120, 120, 70), "door": (8, 255, 51), "table": (255, 6, 82),
    "mountain": (143, 255, 140), "plant": (204, 255, 4), "curtain": (255, 51, 7), "chair": (204, 70, 3),
    "car": (0, 102, 200), "water": (61, 230, 250), "painting": (255, 6, 51), "sofa": (11, 102, 255),
}  # fmt: skip


class PassError(ValueError):
    """A request the pass renderer cannot honour; the message names the fix."""


def render_passes(
    take_dir: str | Path,
    *,
    scene: bpy.types.Scene | None = None,
    camera: bpy.types.Object | None = None,
    frame_start: int | None = None,
    frame_end: int | None = None,
    layers: tuple[str, ...] = LAYERS,
    depth_format: str = "exr",
    lineart: str = "EDGES",
    size: tuple[int, int] | None = None,
    near: float | None = None,
    far: float | None = None,
    samples: int | None = None,
    tag_property: str = "stage_tag",
    palette: dict[str, tuple[int, int, int]] | None = None,
    job_id: str = "",
    on_frame=None,
) -> Take:
    """Render `layers` for frames frame_start..frame_end (default: the scene's range) through
    `camera` (default: the scene's) into the take folder `take_dir`, one frame at a time.

    near/far: the png16 depth range in metres (default: the camera's clip range).
    size: (width, height) of the maps (default: the scene's render size); the scene keeps its own.
    samples: Cycles samples for the colour (the other maps are exact from the first sample).
    palette: {tag: (r, g, b)} overriding the ADE20K colours and the derived ones.
    on_frame: called with each finished frame number (progress, cancel by raising).
    """
    scene = scene or bpy.context.scene
    camera = camera or scene.camera
    take = prepare_take(take_dir, scene=scene, camera=camera, frame_start=frame_start, frame_end=frame_end,
                        layers=layers, depth_format=depth_format, near=near, far=far, size=size,
                        lineart=lineart, tag_property=tag_property, palette=palette, job_id=job_id)
    freestyle = "lineart" in layers and lineart == "FREESTYLE"
    with pass_render_settings(scene, camera, samples=samples, size=(take.info.width, take.info.height),
                              freestyle=freestyle,
                              tag_property=tag_property, tags=take.info.params["segmentation_palette"]):
        for frame in take.info.frames:
            render_frame(take, scene, frame)
            if on_frame is not None:
                on_frame(frame)
    return take


def prepare_take(take_dir, *, scene, camera, frame_start=None, frame_end=None, layers=LAYERS,
                 depth_format="exr", near=None, far=None, size=None, lineart="EDGES", tag_property="stage_tag",
                 palette=None, job_id="") -> Take:
    """Check the request and create the take folder with its take.json (no frames yet)."""
    if camera is None or camera.type != "CAMERA":
        raise PassError("no camera to render from: set the scene's camera or pass a camera object")
    unknown = [name for name in layers if name not in LAYERS]
    if unknown or not layers:
        raise PassError(f"unknown layers {unknown or '(none given)'}; accepted: {', '.join(LAYERS)}")
    if lineart not in LINEART_METHODS:
        raise PassError(f"lineart is {lineart!r}; accepted: {', '.join(LINEART_METHODS)}")
    if depth_format not in DEPTH_FORMATS:
        raise PassError(f"depth_format is {depth_format!r}; accepted: {', '.join(DEPTH_FORMATS)}")
    frame_start = scene.frame_start if frame_start is None else frame_start
    frame_end = scene.frame_end if frame_end is None else frame_end
    if frame_start < 0 or frame_end < frame_start:
        raise PassError(f"frame range {frame_start}..{frame_end} is empty or negative; give start <= end, both >= 0")
    near = camera.data.clip_start if near is None else near
    far = camera.data.clip_end if far is None else far
    if depth_format == "png16" and not 0 <= near < far:
        raise PassError(f"png16 depth needs 0 <= near < far, got near={near}, far={far}")

    width, height = size or pose.render_size(scene)
    if width < 1 or height < 1:
        raise PassError(f"size {width}×{height} is empty; give a positive width and height in pixels")
    spec = {
        "color": Layer("png8"),
        "depth": Layer("exr", units="m") if depth_format == "exr" else Layer("png16", near=near, far=far, units="m"),
        "normal": Layer("png8"),
        "segmentation": Layer("png8"),
        "lineart": Layer("png8"),
        "pose": Layer("png8"),
    }
    info = TakeInfo(
        frame_start=frame_start, frame_end=frame_end, width=width, height=height, fps=scene.render.fps,
        layers={name: spec[name] for name in layers}, stage="render_passes", job_id=job_id,
        source={"blend": bpy.data.filepath, "scene": scene.name, "camera": camera.name},
        params={"segmentation_palette": tag_palette(scene, tag_property, palette), "tag_property": tag_property,
                "lineart": lineart},
        versions={"blender": bpy.app.version_string},
    )
    return Take.create(take_dir, info)


def tag_palette(scene, tag_property: str = "stage_tag", overrides: dict | None = None) -> dict[str, list[int]]:
    """{tag: [r, g, b]} for every tag of the scene's objects and their materials: the override, the
    ADE20K colour, or a colour derived from the tag's name (stable between runs)."""
    tags = sorted({str(owner[tag_property]) for owner in _taggables(scene) if tag_property in owner})
    palette = {}
    for tag in tags:
        colour = (overrides or {}).get(tag) or ADE20K.get(tag.lower()) or _derived_colour(tag)
        palette[tag] = [int(c) for c in colour]
    return palette


def _taggables(scene):
    """The scene's objects and the materials on them: both can carry a tag."""
    for obj in scene.objects:
        yield obj
        for slot in getattr(obj, "material_slots", ()):
            if slot.material is not None:
                yield slot.material


def _derived_colour(tag: str) -> tuple[int, int, int]:
    digest = hashlib.sha1(tag.encode()).digest()
    hue, value = digest[0] / 255, 0.6 + 0.4 * digest[1] / 255
    return tuple(round(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.85, value))


@contextmanager
def pass_render_settings(scene, camera, *, samples=None, size=None, freestyle=False, tag_property="stage_tag",
                         tags=None):
    """Switch the scene to a Cycles pass render (Z, normal, object index; one view layer; tagged
    objects numbered by tag; Freestyle lines as a pass if asked) and put every touched setting
    back afterwards."""
    saved, made = [], []

    def set_(owner, attr, value):
        saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)

    view_layer = bpy.context.view_layer if bpy.context.view_layer in scene.view_layers[:] else scene.view_layers[0]
    tag_index = {tag: i + 1 for i, tag in enumerate(sorted(tags or {}))}
    frame = scene.frame_current
    try:
        set_(scene, "camera", camera)
        set_(scene.render, "engine", "CYCLES")
        set_(scene.render, "use_freestyle", freestyle)
        if freestyle:
            set_(view_layer, "use_freestyle", True)
            set_(view_layer.freestyle_settings, "as_render_pass", True)
            made = _ensure_line_set(view_layer)
        set_(scene.render, "use_compositing", False)  # the raw passes, not a composite of them
        set_(scene.render, "use_sequencer", False)
        set_(scene.render, "use_motion_blur", False)  # data passes of one instant
        set_(scene.cycles, "filter_width", 0.01)  # data passes from the pixel centre: exact maps
        if samples is not None:
            set_(scene.cycles, "samples", samples)
        if size is not None:
            set_(scene.render, "resolution_x", size[0])
            set_(scene.render, "resolution_y", size[1])
            set_(scene.render, "resolution_percentage", 100)
        for other in scene.view_layers:
            set_(other, "use", other == view_layer)
        for flag in ("use_pass_combined", "use_pass_z", "use_pass_normal", "use_pass_object_index",
                     "use_pass_material_index"):
            set_(view_layer, flag, True)
        for owner in dict.fromkeys(_taggables(scene)):  # a material's tag wins over its object's
            set_(owner, "pass_index", tag_index.get(str(owner.get(tag_property)), 0))
        for obj in scene.objects:  # a card's filmed shadow is no geometry: the floor under it is what the maps show
            if obj.get(DECAL_FLAG):
                set_(obj, "visible_camera", False)
        settings = scene.render.image_settings
        for attr, value in (*media_type_settings("MULTI_LAYER_IMAGE"), ("file_format", "OPEN_EXR_MULTILAYER"),
                            ("exr_codec", "NONE"), ("color_depth", "32"), ("use_exr_interleave", True)):
            if hasattr(settings, attr):  # use_exr_interleave is 5.0+ (4.x writes its own layout)
                set_(settings, attr, value)
        set_(scene.render, "filepath", scene.render.filepath)
        yield view_layer
    finally:
        for owner, attr, value in saved:  # in setting order: media_type before file_format
            try:
                setattr(owner, attr, value)
            except (TypeError, AttributeError, ReferenceError):
                pass  # an object deleted meanwhile
        for remove in made:
            remove()
        scene.frame_set(frame)  # re-evaluate the scene where the artist left it


def _ensure_line_set(view_layer) -> list:
    """Give the view layer's line sets a plain white style unless one is styled already (then the
    artist's lines are used); return the steps that undo it."""
    settings = view_layer.freestyle_settings
    if any(line_set.show_render and line_set.linestyle for line_set in settings.linesets):
        return []
    bare = [line_set for line_set in settings.linesets if line_set.linestyle is None]
    if bare:
        style = bpy.data.linestyles.new("Stage lines")
        for line_set in bare:
            line_set.linestyle = style
        undo = []
    else:  # a new line set comes with a new style of its own
        line_set = settings.linesets.new("Stage lines")
        style = line_set.linestyle or bpy.data.linestyles.new("Stage lines")
        line_set.linestyle = style
        undo = [lambda: settings.linesets.remove(line_set)]
    style.color, style.thickness = (1.0, 1.0, 1.0), 1.0
    return undo + [lambda: bpy.data.linestyles.remove(style)]  # which also empties the sets' style


def render_frame(take: Take, scene, frame: int) -> dict[str, np.ndarray]:
    """Render one frame inside `pass_render_settings` and write its layers to the take."""
    view_layer = next(vl for vl in scene.view_layers if vl.use)
    scene.frame_set(frame)
    with tempfile.TemporaryDirectory(prefix="stage-passes-") as tmp:
        exr_path = Path(tmp) / "passes.exr"
        scene.render.filepath = str(exr_path)
        bpy.ops.render.render(write_still=True, scene=scene.name, layer=view_layer.name)
        channels = _channels(read_exr(exr_path), view_layer.name)
        if "color" in take.info.layers:
            colour_png = Path(tmp) / "color.png"
            _save_colour(scene, colour_png)
            take.write_file("color", frame, colour_png.read_bytes())

    maps = compute_maps(channels, scene.camera, take.info.params["segmentation_palette"], take.info.layers)
    if "pose" in take.info.layers:
        maps["pose"], _ = pose.openpose_frame(scene, scene.camera)
    for name, array in maps.items():
        if name in take.info.layers:
            take.write_file(name, frame, encode(take.info.layers[name], array))
    return maps


def _channels(planes: dict[str, np.ndarray], view_layer: str) -> dict[str, np.ndarray]:
    prefix = view_layer + "."
    planes = {name.removeprefix(prefix): plane for name, plane in planes.items() if name.startswith(prefix)}
    objects = next((planes[k] for k in ("Object Index.X", "IndexOB.X") if k in planes), None)
    materials = next((planes[k] for k in ("Material Index.X", "IndexMA.X") if k in planes), None)
    missing = [k for k in ("Depth.Z", "Normal.X") if k not in planes]
    if missing or objects is None or materials is None:
        raise PassError(f"the render lacks passes {missing or ['object/material index']}; found {sorted(planes)}")
    channels = {"depth": planes["Depth.Z"], "index": np.where(materials > 0.5, materials, objects),
                "normal": np.stack([planes["Normal.X"], planes["Normal.Y"], planes["Normal.Z"]], axis=-1)}
    if "Freestyle.A" in planes:
        channels["freestyle"] = planes["Freestyle.A"]
    return channels


def _save_colour(scene, path: Path) -> None:
    settings = scene.render.image_settings
    before = [(attr, getattr(settings, attr)) for attr in
              (*(a for a, _ in media_type_settings("IMAGE")), "file_format", "color_mode", "color_depth")]
    set_media_type(settings, "IMAGE")
    settings.file_format = "PNG"
    settings.color_mode, settings.color_depth = "RGB", "8"
    try:
        bpy.data.images["Render Result"].save_render(str(path), scene=scene)
    finally:
        for attr, value in before:  # media_type before file_format, as they were set
            setattr(settings, attr, value)


def compute_maps(channels: dict[str, np.ndarray], camera, palette: dict, layers) -> dict[str, np.ndarray]:
    """Depth (metres, background at far), camera-space normals, segmentation and line art from the
    raw passes of one frame."""
    depth = channels["depth"]
    background = depth >= BACKGROUND_DEPTH
    maps = {}
    if "depth" in layers:
        far = layers["depth"].far if layers["depth"].far is not None else camera.data.clip_end
        maps["depth"] = np.where(background, far, depth).astype(np.float32)
    rotation = np.array(camera.matrix_world.to_3x3().normalized())
    normal = channels["normal"] @ rotation  # world -> camera axes (rows of R^T)
    normal_rgb = np.where(background[..., None], 0, np.round((normal + 1) * 127.5)).clip(0, 255).astype(np.uint8)
    maps["normal"] = normal_rgb
    index = np.round(channels["index"]).astype(np.int32)
    colours = np.zeros((len(palette) + 1, 3), np.uint8)
    for i, tag in enumerate(sorted(palette)):
        colours[i + 1] = palette[tag]
    maps["segmentation"] = colours[np.clip(index, 0, len(palette))]
    if "freestyle" in channels:
        maps["lineart"] = np.round(np.clip(channels["freestyle"], 0, 1) * 255).astype(np.uint8)
    else:
        maps["lineart"] = line_art(depth, normal, index, background)
    return maps


def line_art(depth, normal, index, background, *, depth_jump=0.03, crease_degrees=35.0) -> np.ndarray:
    """White one-pixel lines on black where neighbouring pixels differ in object, in depth by more
    than `depth_jump` of their distance, or in normal by more than `crease_degrees`."""
    depth = np.where(background, BACKGROUND_DEPTH, depth)
    edges = np.zeros(depth.shape, bool)
    cos_crease = np.cos(np.radians(crease_degrees))
    for axis in (0, 1):
        a = [slice(None), slice(None)]
        b = [slice(None), slice(None)]
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        a, b = tuple(a), tuple(b)
        near = np.minimum(depth[a], depth[b])
        jump = np.abs(depth[a] - depth[b]) > depth_jump * near
        bend = (normal[a] * normal[b]).sum(-1) < cos_crease
        other = index[a] != index[b]
        edge = (jump | other | (bend & ~background[a] & ~background[b]))
        edges[a] |= edge & (depth[a] <= depth[b])  # draw on the nearer side, one pixel wide
        edges[b] |= edge & (depth[b] < depth[a])
    return np.where(edges, 255, 0).astype(np.uint8)


def encode(layer: Layer, array: np.ndarray) -> bytes:
    """One frame of a layer as the file bytes the take stores."""
    if layer.format == "exr":
        return exr_bytes({"Y": array.astype(np.float32)})
    if layer.format == "png16":
        unit = np.clip((array - layer.near) / (layer.far - layer.near), 0.0, 1.0)
        return png_bytes(np.round(unit * 65535).astype(np.uint16))
    return png_bytes(array.astype(np.uint8))
