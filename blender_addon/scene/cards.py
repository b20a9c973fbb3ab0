"""Character cards: a take (colour, matte, depth sequences) as a lit, depth-displaced plane.

The card stands on a point, turned about Z to face a camera, sized from the take's aspect ratio. What
stands on the point is the character's feet (the matte's lowest opaque row over the take), or with
stand="FRAME" the frame's bottom edge: footage rarely ends exactly at the feet, and a card standing on
its frame edge leaves the character floating. Its material shows the colour sequence, cuts it out with the matte (so shadows
fall through the matte too) and mixes a lit, rough Principled BSDF with emission by a "Lit" value.
The depth sequence displaces the surface toward the camera: `depth_scale` metres between the depth
range's ends (near end toward the camera, the range's middle on the plane).

A take with `normal` / `albedo` layers makes a relightable card (scene/card_relight.py): albedo as base
colour, normals as the shading normal, behind a "Relit" switch (0 = as filmed). The displacement falls off
inside the matte's edge (no streaky fringe from a side view), and with `contact` the card's origin follows
the feet frame by frame (scene/contact.py). A take with a `shadow` layer can lay the filmed shadow on the
floor under the card (scene/card_shadow.py), instead of or beside the card's own shadow.

Displacement runs either in the material (true displacement, Cycles and EEVEE) or in a Displace
modifier (real geometry: the Solid viewport shows it and the evaluated mesh can be measured).
Only one of them is ever set up, so nothing is displaced twice.
"""

from __future__ import annotations

import math
from pathlib import Path

import bpy
from mathutils import Matrix, Vector

from backend.ipc.take import Take

from ..compat import mix_factor
from . import card_relight, card_shadow, contact as card_contact

EXTEND_MODES = ("HOLD", "LOOP", "STOP")
DISPLACE_MODES = ("MATERIAL", "MODIFIER", "NONE")
STAND_MODES = ("FEET", "FRAME")
FEET_SAMPLE_FRAMES = 24  # alpha frames the feet search reads, spread over the take: a long take costs no more
FEET_MIN_PIXELS = 3      # opaque pixels a row needs to count as the feet (a stray speck does not)
LIT_NODE = "Lit"
RELIT_NODE = card_relight.RELIT_NODE
CARD_LAYERS = ("color", "alpha", "depth", "normal", "albedo")
MAX_GRID = 256  # vertices along the card's long side unless asked otherwise


class CardError(ValueError):
    """A take or an argument that cannot make a card; the message says what to change."""


def make_card(
    take_dir: str | Path,
    *,
    height: float = 1.8,
    depth_scale: float = 0.25,
    location=None,
    camera: bpy.types.Object | None = None,
    frame_start: int = 1,
    offset: int = 0,
    extend: str = "HOLD",
    lit: float = 1.0,
    displace: str = "MATERIAL",
    resolution: int | None = None,
    name: str | None = None,
    tag: str = "person",
    stand: str = "FEET",
    scene: bpy.types.Scene | None = None,
    relit: float = 1.0,
    edge_falloff: float = 0.02,
    contact: bool = True,
    character_height: float | None = None,
    track_camera: bool = False,
    shadow: str = "BLENDER",
) -> bpy.types.Object:
    """Build a card object from the take folder `take_dir` and link it to `scene`'s collection.

    height: the frame's height in metres. character_height, when given, replaces it: the character's
        height in metres (the matte's tallest opaque extent over the take), the frame sized to match;
        a take without a matte (or an empty one) counts the whole frame as the character.
    track_camera: also add a "Face Camera" constraint, so the card keeps turning (about Z) to the camera
        when either moves; the artist can switch it off in the constraint stack.
    location: where the character stands (default: the 3D cursor); the card's origin is there.
    stand: FEET puts the matte's lowest opaque row over the take on `location` (the frame's bottom edge
        when there is no matte or it is empty); FRAME puts the frame's bottom edge there.
    camera: what the card turns to face about Z (default: the scene's camera; none: faces -Y).
    frame_start, offset, extend: the take's first frame (plus `offset` frames) shows at scene frame
        `frame_start`; past the end it holds the last frame, loops, or the card disappears (STOP).
        Before `frame_start` the card is hidden.
    lit: 1 = lit by the scene's lights, 0 = pure emission of the footage colour.
    displace: MATERIAL (true displacement), MODIFIER (Displace modifier geometry) or NONE.
    resolution: grid vertices along the long side (default: the depth map's size, at most 256).
    tag: the object's `stage_tag` (its segmentation class in rendered passes).
    relit: with normal / albedo layers, 1 shades the card by them, 0 shows it as filmed (set_card_relit).
    edge_falloff: the displacement reaches full strength this far inside the matte's edge (share of the
        frame's height); 0 displaces right up to the edge.
    contact: with stand=FEET, key the card's delta Z so the feet touch `location` on every frame.
    shadow: the card's shadow on the floor: BLENDER (the card casts it from the scene's lights), FILMED (the
        take's `shadow` layer laid on the floor under the card, the card casting none) or BOTH.
    """
    scene = scene or bpy.context.scene
    take = Take.open(take_dir)
    info = take.info
    if character_height is not None:
        if character_height <= 0:
            raise CardError(f"character_height is {character_height} m; give the character's height in metres, > 0")
        height = character_height / (matte_extent(take) or 1.0)
    _check_args(take, height, depth_scale, extend, displace, lit, resolution, offset)
    if stand not in STAND_MODES:
        raise CardError(f"stand is {stand!r}; accepted: {', '.join(STAND_MODES)}")
    if not 0.0 <= relit <= 1.0:
        raise CardError(f"relit is {relit}; use a value from 0 (as filmed) to 1 (relit by the normal and albedo layers)")
    if not 0.0 <= edge_falloff <= 0.5:
        raise CardError(f"edge_falloff is {edge_falloff}; use a share of the frame's height from 0 (none) to 0.5")
    _check_shadow(take, shadow)

    name = name or card_name(take_dir)
    images = {layer: _load_sequence(take, layer) for layer in CARD_LAYERS if layer in info.layers}
    near, far = _depth_range(take)

    aspect = info.width / info.height
    columns, rows = _grid_size(take, aspect, resolution)
    mesh = _grid_mesh(name, height * aspect, height, columns, rows)
    rows = card_contact.lowest_rows(take) if stand == "FEET" and contact and "alpha" in info.layers else {}
    lifts = card_contact.contact_lifts(rows, height, info.height)
    if stand == "FEET":
        margin = card_contact.lowest_margin(rows, info.height) if rows else None
        below_feet = height * (margin if margin is not None else feet_margin(take))
    else:
        below_feet = 0.0
    if below_feet:
        mesh.transform(Matrix.Translation((0.0, 0.0, -below_feet)))
    card = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(card)
    card.location = Vector(location) if location is not None else scene.cursor.location.copy()
    camera = camera if camera is not None else scene.camera
    if camera is not None:
        face_camera(card, camera)
        if track_camera:
            track_camera_constraint(card, camera)

    material = _card_material(name, images, near, far, depth_scale, lit, displace, relit, edge_falloff, aspect)
    mesh.materials.append(material)
    if displace == "MODIFIER" and "depth" in images:
        _add_displace_modifier(card, images["depth"], (info.width, info.height), near, far, depth_scale)

    card["stage_card"] = True
    card["stage_take"] = str(Path(take_dir).resolve())
    card["stage_tag"] = tag
    card["stage_depth_scale"] = depth_scale
    card["stage_below_feet"] = below_feet  # metres of frame under the feet, below the origin
    if card_shadow.SHADOW_LAYER in info.layers:
        card["stage_has_shadow"] = True  # the panel offers Filmed / Both without reading take.json on every draw
    _apply_shadow(card, take, shadow)
    if lifts:  # metres each take frame's feet stand above the take's lowest, keyed by set_card_timing
        card["stage_contact"] = [round(v, 6) for v in lifts.values()]
    set_card_timing(card, frame_start=frame_start, offset=offset, extend=extend)
    return card


GENERIC_TAKE_NAMES = {"card", "take", "takes"}  # folder names that say nothing about the character


def card_name(take_dir: str | Path) -> str:
    """A card is named after its take ("clip" -> "Card clip"); a take folder with a generic name (the shot
    runner's takes/card) is named after the shot folder above it."""
    path = Path(take_dir).resolve()
    for part in (path, *path.parents):
        if part.name and part.name.lower() not in GENERIC_TAKE_NAMES:
            return f"Card {part.name}"
    return "Card"


def matte_extent(take: Take) -> float | None:
    """The tallest the matte's opaque figure stands in any of up to FEET_SAMPLE_FRAMES frames spread over
    the take, as a share of the frame's height (the character at full stretch); None without a figure."""
    if "alpha" not in take.info.layers:
        return None
    import numpy as np

    from .frames import read_frame

    frames = list(take.info.frames)
    tallest = 0
    for frame in frames[:: max(1, len(frames) // FEET_SAMPLE_FRAMES)]:
        if not take.path("alpha", frame).is_file():
            continue  # an unfinished take: the frames it has decide
        alpha = read_frame(take, "alpha", frame)
        alpha = alpha[..., 0] if alpha.ndim == 3 else alpha
        rows = np.flatnonzero((alpha >= 128).sum(axis=1) >= FEET_MIN_PIXELS)
        if rows.size:
            tallest = max(tallest, int(rows[-1] - rows[0] + 1))
    return tallest / take.info.height if tallest else None


TRACK_CONSTRAINT = "Face Camera"


def track_camera_constraint(card: bpy.types.Object, camera: bpy.types.Object) -> bpy.types.Constraint:
    """A Locked Track constraint turning the card's front (local -Y) to `camera` about Z only, so it
    stays upright and faces the camera however either moves."""
    constraint = card.constraints.get(TRACK_CONSTRAINT) or card.constraints.new("LOCKED_TRACK")
    constraint.name = TRACK_CONSTRAINT
    constraint.target = camera
    constraint.track_axis, constraint.lock_axis = "TRACK_NEGATIVE_Y", "LOCK_Z"
    return constraint


def feet_margin(take: Take) -> float:
    """The share of the frame's height below the lowest row the matte holds opaque in any of up to
    FEET_SAMPLE_FRAMES frames spread over the take (the feet's lowest point over the shot); 0 without a matte."""
    if "alpha" not in take.info.layers:
        return 0.0
    import numpy as np

    from .frames import read_frame

    frames = list(take.info.frames)
    picks = frames[:: max(1, len(frames) // FEET_SAMPLE_FRAMES)]
    lowest = -1
    for frame in picks:
        path = take.path("alpha", frame)
        if not path.is_file():
            continue  # an unfinished take: the frames it has decide
        alpha = read_frame(take, "alpha", frame)
        alpha = alpha[..., 0] if alpha.ndim == 3 else alpha
        rows = np.flatnonzero((alpha >= 128).sum(axis=1) >= FEET_MIN_PIXELS)
        if rows.size:
            lowest = max(lowest, int(rows[-1]))
    if lowest < 0:
        return 0.0
    height = take.info.height
    return (height - 1 - lowest) / height


def face_camera(card: bpy.types.Object, camera: bpy.types.Object) -> None:
    """Turn the card about Z only so that its front (local -Y) points at the camera."""
    for view_layer in card.users_scene[0].view_layers if card.users_scene else ():
        view_layer.update()  # fresh world matrices for objects moved since the last evaluation
    to_camera = camera.matrix_world.translation - card.matrix_world.translation
    if to_camera.to_2d().length < 1e-9:
        return  # camera straight above or below: any heading faces it equally
    card.rotation_euler = (0.0, 0.0, math.atan2(to_camera.x, -to_camera.y))


def set_card_timing(card: bpy.types.Object, *, frame_start: int = 1, offset: int = 0, extend: str = "HOLD") -> None:
    """Map the card's sequences to scene frames and key its visibility (hidden before the start,
    and after the end for STOP)."""
    if extend not in EXTEND_MODES:
        raise CardError(f"extend is {extend!r}; accepted: {', '.join(EXTEND_MODES)}")
    take = Take.open(card["stage_take"])
    frames = len(take.info.frames)
    if not 0 <= offset < frames:
        raise CardError(f"offset {offset} is outside the take's {frames} frames; use 0..{frames - 1}")
    duration = frames - offset
    for user in _image_users(card):
        user.frame_start = frame_start
        user.frame_offset = take.info.frame_start - 1 + offset
        user.frame_duration = duration
        user.use_cyclic = extend == "LOOP"
        user.use_auto_refresh = True

    keys = [(frame_start - 1, True), (frame_start, False)]
    if extend == "STOP":
        keys.append((frame_start + duration, True))
    decal = card_shadow.card_decal(card)
    for obj in (card, decal) if decal is not None else (card,):  # the filmed shadow shows when the card does
        channelbag = _channelbag(obj)
        if channelbag is not None:  # re-timing: drop the previous visibility keys
            for fcurve in [f for f in channelbag.fcurves if f.data_path in ("hide_render", "hide_viewport")]:
                channelbag.fcurves.remove(fcurve)
        for frame, hidden in keys:
            obj.hide_render = obj.hide_viewport = hidden
            obj.keyframe_insert("hide_render", frame=frame)
            obj.keyframe_insert("hide_viewport", frame=frame)
        obj.hide_render = obj.hide_viewport = False
    card["stage_frame_start"], card["stage_offset"], card["stage_extend"] = frame_start, offset, extend
    lifts = list(card.get("stage_contact", []))
    if lifts:
        card_contact.key_contact(card, lifts, frame_start=frame_start, offset=offset, extend=extend)


def set_card_shadow(card: bpy.types.Object, mode: str) -> None:
    """The card's shadow: BLENDER (cast from the scene's lights, as a card always did), FILMED (the take's
    shadow layer on the floor under the card, which then casts none) or BOTH."""
    take = Take.open(card["stage_take"])
    _check_shadow(take, mode)
    _apply_shadow(card, take, mode)
    set_card_timing(card, frame_start=card.get("stage_frame_start", 1), offset=card.get("stage_offset", 0),
                    extend=card.get("stage_extend", "HOLD"))  # the decal's sequence and visibility follow the card's


def _check_shadow(take: Take, mode: str) -> None:
    if mode not in card_shadow.SHADOW_MODES:
        raise CardError(f"shadow is {mode!r}; accepted: {', '.join(card_shadow.SHADOW_MODES)}")
    if not card_shadow.wants_decal(mode):
        return
    layer = card_shadow.SHADOW_LAYER
    if layer not in take.info.layers:
        raise CardError(f"{take.root} has no 'shadow' layer for a filmed shadow; run the matte with "
                        "--set shadow=true (chroma, difference keyer), or use Blender's shadow")
    first = take.path(layer, take.info.frame_start)
    if not first.is_file():
        raise CardError(f"{take.root} lacks {layer}/{first.name}, the first frame of its shadow layer; "
                        "finish or re-run the take")


def _apply_shadow(card: bpy.types.Object, take: Take, mode: str) -> None:
    decal = card_shadow.card_decal(card)
    if card_shadow.wants_decal(mode) and decal is None:
        card_shadow.add_decal(card, _load_sequence(take, card_shadow.SHADOW_LAYER), card.location.z)
        for scene in card.users_scene:
            card_shadow.no_roulette_through_decals(scene)
    elif not card_shadow.wants_decal(mode) and decal is not None:
        card_shadow.remove_decal(card)
    card.visible_shadow = mode != "FILMED"
    card["stage_shadow"] = mode


def set_card_rendered(card: bpy.types.Object, rendered: bool) -> None:
    """The artist's render switch. The card's timing keys hide_render (hidden before its start), so a
    plain toggle would be undone by the next frame change: off mutes that curve and hides the card, on
    unmutes it, and the timing decides again."""
    decal = card_shadow.card_decal(card)
    for obj in (card, decal) if decal is not None else (card,):  # its filmed shadow goes and comes with it
        channelbag = _channelbag(obj)
        curve = channelbag.fcurves.find("hide_render") if channelbag is not None else None
        if curve is not None:
            curve.mute = not rendered
        obj.hide_render = not rendered
        if rendered and curve is not None:
            obj.hide_render = bool(curve.evaluate(card.users_scene[0].frame_current if card.users_scene else 1) > 0.5)


def card_rendered(card: bpy.types.Object) -> bool:
    """Whether the artist's render switch is on (the timing may still hide the card on some frames)."""
    channelbag = _channelbag(card)
    curve = channelbag.fcurves.find("hide_render") if channelbag is not None else None
    return not curve.mute if curve is not None else not card.hide_render


def scene_cards(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """The cards of a scene (objects `make_card` made), by name."""
    return sorted((obj for obj in scene.objects if obj.get("stage_card")), key=lambda obj: obj.name)


def set_card_lit(card: bpy.types.Object, lit: float) -> None:
    """1 = lit by the scene's lights, 0 = emission only; values between mix the two."""
    if not 0.0 <= lit <= 1.0:
        raise CardError(f"lit is {lit}; use a value from 0 (emission) to 1 (lit)")
    card.active_material.node_tree.nodes[LIT_NODE].outputs[0].default_value = lit


def _check_args(take: Take, height, depth_scale, extend, displace, lit, resolution, offset) -> None:
    layers = take.info.layers
    frames = len(take.info.frames)
    if not 0 <= offset < frames:
        raise CardError(f"offset {offset} is outside the take's {frames} frames; use 0..{frames - 1}")
    if "color" not in layers:
        raise CardError(f"{take.root} has no 'color' layer (it has {sorted(layers)}); a card needs colour frames")
    if take.info.width <= 0 or take.info.height <= 0:
        raise CardError(f"{take.root}/take.json gives a size of {take.info.width}×{take.info.height}; both must be > 0")
    for layer in CARD_LAYERS:
        first = take.path(layer, take.info.frame_start) if layer in layers else None
        if first is not None and not first.is_file():
            raise CardError(f"{take.root} lacks {layer}/{first.name}, the first frame of its {layer!r} layer; "
                            "finish or re-run the take")
    if height <= 0:
        raise CardError(f"height is {height} m; give the card's height in metres, > 0")
    if depth_scale < 0:
        raise CardError(f"depth_scale is {depth_scale} m; use 0 (flat) or more")
    if extend not in EXTEND_MODES:
        raise CardError(f"extend is {extend!r}; accepted: {', '.join(EXTEND_MODES)}")
    if displace not in DISPLACE_MODES:
        raise CardError(f"displace is {displace!r}; accepted: {', '.join(DISPLACE_MODES)}")
    if not 0.0 <= lit <= 1.0:
        raise CardError(f"lit is {lit}; use a value from 0 (emission) to 1 (lit)")
    if resolution is not None and resolution < 2:
        raise CardError(f"resolution is {resolution}; the grid needs at least 2 vertices per side")
    if "depth" in layers and layers["depth"].format == "png8":
        raise CardError("the depth layer is 8-bit; depth must be png16 (with near/far) or exr")


def _grid_size(take: Take, aspect: float, resolution: int | None) -> tuple[int, int]:
    """Vertices along x and z: one per depth pixel, capped, keeping the aspect ratio."""
    if resolution is None:
        resolution = min(max(take.info.width, take.info.height), MAX_GRID)
    if aspect >= 1:
        return resolution, max(2, round(resolution / aspect))
    return max(2, round(resolution * aspect)), resolution


def _grid_mesh(name: str, width: float, height: float, columns: int, rows: int) -> bpy.types.Mesh:
    """A vertical grid in the XZ plane, bottom edge centred on the origin, front facing -Y, UVs 0..1."""
    import numpy as np

    u = np.linspace(0.0, 1.0, columns)
    v = np.linspace(0.0, 1.0, rows)
    uu, vv = np.meshgrid(u, v)  # rows × columns
    coords = np.stack([(uu - 0.5) * width, np.zeros_like(uu), vv * height], axis=-1).reshape(-1, 3)
    index = np.arange(rows * columns).reshape(rows, columns)
    # counter-clockwise seen from -Y, so the normals point at the viewer in front
    quads = np.stack([index[:-1, :-1], index[:-1, 1:], index[1:, 1:], index[1:, :-1]], axis=-1).reshape(-1, 4)

    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(coords))
    mesh.vertices.foreach_set("co", coords.astype(np.float32).ravel())
    mesh.loops.add(quads.size)
    mesh.loops.foreach_set("vertex_index", quads.astype(np.int32).ravel())
    mesh.polygons.add(len(quads))
    mesh.polygons.foreach_set("loop_start", (np.arange(len(quads)) * 4).astype(np.int32))
    mesh.polygons.foreach_set("loop_total", np.full(len(quads), 4, np.int32))
    uv_layer = mesh.uv_layers.new(name="UVMap")
    uv = np.stack([uu, vv], axis=-1).reshape(-1, 2)[quads.ravel()]
    uv_layer.data.foreach_set("uv", uv.astype(np.float32).ravel())
    mesh.update(calc_edges=True)
    mesh.validate()
    return mesh


def _load_sequence(take: Take, layer: str) -> bpy.types.Image:
    path = take.path(layer, take.info.frame_start)
    image = bpy.data.images.load(str(path), check_existing=False)
    image.name = f"{Path(take.root).name} {layer}"
    image.source = "SEQUENCE"
    if layer == "color":
        image.alpha_mode = "CHANNEL_PACKED"
    elif layer == "albedo":
        image.alpha_mode = "NONE"  # sRGB colour like the footage
    else:
        image.colorspace_settings.name = "Non-Color"  # data: no view transform, no sRGB decode
        image.alpha_mode = "NONE"
    return image


def _depth_range(take: Take) -> tuple[float, float]:
    """The values at the depth range's ends as the image texture sees them (png16: 0..1)."""
    layer = take.info.layers.get("depth")
    if layer is None or layer.format == "png16":
        return 0.0, 1.0  # the texture reads v/65535; near..far map to 0..1 linearly
    if layer.near is not None and layer.far is not None and layer.far > layer.near:
        return float(layer.near), float(layer.far)
    # metric EXR without a declared range: the first frame's finite values set it
    import numpy as np

    from .frames import read_frame

    values = read_frame(take, "depth", take.info.frame_start)
    values = values[np.isfinite(values) & (values < 1e9)]
    if values.size == 0 or values.max() <= values.min():
        return 0.0, 1.0
    return float(values.min()), float(values.max())


def _card_material(name, images, near, far, depth_scale, lit, displace, relit=1.0, edge_falloff=0.0,
                   aspect=1.0) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    if material.node_tree is None:
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()

    uv = nodes.new("ShaderNodeTexCoord")
    textures = {}
    for layer, image in images.items():
        tex = nodes.new("ShaderNodeTexImage")
        tex.name = tex.label = layer
        tex.image = image
        tex.extension = "EXTEND"
        links.new(uv.outputs["UV"], tex.inputs["Vector"])
        textures[layer] = tex
    colour = textures["color"].outputs["Color"]

    principled = nodes.new("ShaderNodeBsdfPrincipled")
    links.new(colour, principled.inputs["Base Color"])
    principled.inputs["Roughness"].default_value = 1.0  # the seed relights with a diffuse shader
    principled.inputs["Specular IOR Level"].default_value = 0.0
    card_relight.add_relight(nodes, links, textures, principled, colour, relit)
    emission = nodes.new("ShaderNodeEmission")
    links.new(colour, emission.inputs["Color"])
    lit_value = nodes.new("ShaderNodeValue")
    lit_value.name = lit_value.label = LIT_NODE
    lit_value.outputs[0].default_value = lit
    shade = nodes.new("ShaderNodeMixShader")
    links.new(lit_value.outputs[0], mix_factor(shade))
    links.new(emission.outputs[0], shade.inputs[1])
    links.new(principled.outputs[0], shade.inputs[2])

    output = nodes.new("ShaderNodeOutputMaterial")
    if "alpha" in textures:
        cutout = nodes.new("ShaderNodeMixShader")
        transparent = nodes.new("ShaderNodeBsdfTransparent")
        links.new(textures["alpha"].outputs["Color"], mix_factor(cutout))
        links.new(transparent.outputs[0], cutout.inputs[1])
        links.new(shade.outputs[0], cutout.inputs[2])
        links.new(cutout.outputs[0], output.inputs["Surface"])
    else:
        links.new(shade.outputs[0], output.inputs["Surface"])

    if displace == "MATERIAL" and "depth" in textures:
        # depth near..far -> +scale/2 (toward the camera) .. -scale/2 along the normal
        to_offset = nodes.new("ShaderNodeMapRange")
        to_offset.clamp = True
        links.new(textures["depth"].outputs["Color"], to_offset.inputs["Value"])
        to_offset.inputs["From Min"].default_value = near
        to_offset.inputs["From Max"].default_value = far
        to_offset.inputs["To Min"].default_value = depth_scale / 2
        to_offset.inputs["To Max"].default_value = -depth_scale / 2
        height = to_offset.outputs["Result"]
        if "alpha" in textures and edge_falloff > 0:  # flat at the matte's edge: no fringe from the side
            faded = nodes.new("ShaderNodeMath")
            faded.operation = "MULTIPLY"
            links.new(height, faded.inputs[0])
            links.new(card_relight.edge_falloff(nodes, links, uv.outputs["UV"], images["alpha"], edge_falloff, aspect),
                      faded.inputs[1])
            height = faded.outputs[0]
        displacement = nodes.new("ShaderNodeDisplacement")
        displacement.space = "OBJECT"
        displacement.inputs["Midlevel"].default_value = 0.0
        displacement.inputs["Scale"].default_value = 1.0
        links.new(height, displacement.inputs["Height"])
        links.new(displacement.outputs[0], output.inputs["Displacement"])
        material.displacement_method = "DISPLACEMENT"
    else:
        material.displacement_method = "BUMP"

    material.surface_render_method = "DITHERED"  # EEVEE: depth-correct cut-out
    material.use_transparent_shadow = True  # EEVEE: the shadow follows the matte
    _arrange(nodes)
    return material


def _add_displace_modifier(card, depth_image, size, near, far, depth_scale) -> None:
    texture = bpy.data.textures.new(f"{card.name} depth", type="IMAGE")
    texture.image = depth_image
    texture.extension = "EXTEND"
    texture.use_interpolation = True
    modifier = card.modifiers.new("Depth", type="DISPLACE")
    modifier.texture = texture
    modifier.texture_coords = "UV"
    modifier.uv_layer = _pixel_centre_uvs(card.data, size).name
    modifier.direction = "NORMAL"
    modifier.space = "LOCAL"
    # offset = (value - mid) * strength: near end +scale/2 toward the camera, far end -scale/2
    modifier.mid_level = (near + far) / 2
    modifier.strength = -depth_scale / (far - near)


def _pixel_centre_uvs(mesh, size):
    """A UV map whose 0..1 ends sit on the first and last pixel centres: the texture system the
    Displace modifier samples through puts texel edges, not centres, at 0 and 1."""
    import numpy as np

    width, height = size
    uvs = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers["UVMap"].data.foreach_get("uv", uvs)
    uvs = uvs.reshape(-1, 2)
    uvs = uvs * [(width - 1) / width, (height - 1) / height] + [0.5 / width, 0.5 / height]
    layer = mesh.uv_layers.new(name="DepthUV", do_init=False)
    layer.data.foreach_set("uv", uvs.astype(np.float32).ravel())
    mesh.uv_layers.active = mesh.uv_layers["UVMap"]
    return layer


def _image_users(card: bpy.types.Object):
    decal = card_shadow.card_decal(card)
    for material in (card.active_material, decal.active_material if decal is not None else None):
        if material is not None:
            for node in material.node_tree.nodes:
                if node.type == "TEX_IMAGE":
                    yield node.image_user
    for modifier in card.modifiers:
        if modifier.type == "DISPLACE" and modifier.texture is not None:
            yield modifier.texture.image_user


def _channelbag(obj):
    from bpy_extras import anim_utils

    if obj.animation_data is None or obj.animation_data.action is None:
        return None
    return anim_utils.action_get_channelbag_for_slot(obj.animation_data.action, obj.animation_data.action_slot)


def _arrange(nodes) -> None:
    """Lay the nodes out left to right in creation order, so the tree is readable when opened."""
    for i, node in enumerate(nodes):
        node.location = (i * 220 - 1000, (i % 3) * -260)
