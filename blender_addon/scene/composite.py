"""The stylize compositor set-up: a diffused image sequence over the scene's own render, through a
mask of chosen objects that can be grown and feathered, with a blend mode and a factor, so one
element can "vibrate" over a stable background (the seed's compositing step).

Blender 5.0 composites through a node group assigned to `scene.compositing_node_group`, 4.x
through the scene's own `node_tree` (compat.new_compositor picks); the objects' mask comes from the
Cryptomatte object pass, by name, so it is antialiased and needs no pass index.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from backend.ipc.take import Take

from ..compat import dilate_by_distance, gaussian_blur, new_compositor, scale_to_render_size

BLEND_MODES = ("MIX", "MULTIPLY", "SCREEN", "OVERLAY", "SOFT_LIGHT", "ADD", "LIGHTEN", "DARKEN", "COLOR", "VALUE",
               "HUE", "SATURATION", "DIFFERENCE")
GROUP_NAME = "Stage Stylize"


class CompositeError(ValueError):
    """A compositor request that cannot be built; the message names the fix."""


def build_stylize_compositor(
    scene: bpy.types.Scene,
    take_dir: str | Path,
    objects: list[bpy.types.Object],
    *,
    grow: int = 0,
    feather: float = 0.0,
    blend: str = "MIX",
    factor: float = 1.0,
    frame_start: int = 1,
    offset: int = 0,
    loop: bool = False,
    view_layer: bpy.types.ViewLayer | None = None,
) -> bpy.types.NodeTree:
    """Composite the take's colour sequence over `scene`'s render inside the mask of `objects`.

    grow: pixels to grow (negative: shrink) the mask; feather: blur radius of its edge in pixels.
    blend: how the diffused image combines with the render (MIX, MULTIPLY, SCREEN, ...);
    factor: 0 (render only) .. 1 (full effect inside the mask).
    frame_start/offset/loop: the take's first frame (plus `offset`) shows at `frame_start`; past the
    end it holds its last frame, or loops.
    5.0+: a new node group becomes the scene's compositor (a previous one stays in bpy.data);
    4.x: the scene's compositor tree is rebuilt.
    """
    take = Take.open(take_dir)
    _check(take, objects, blend, factor, offset, feather)
    view_layer = view_layer or scene.view_layers[0]
    view_layer.use_pass_cryptomatte_object = True
    scene.render.use_compositing = True

    tree, result = new_compositor(scene, GROUP_NAME)
    nodes, links = tree.nodes, tree.links

    render = nodes.new("CompositorNodeRLayers")
    render.scene, render.layer = scene, view_layer.name

    diffused = nodes.new("CompositorNodeImage")
    diffused.name = diffused.label = "Diffused"
    diffused.image = _sequence(take)
    diffused.frame_start = frame_start
    diffused.frame_offset = take.info.frame_start - 1 + offset
    diffused.frame_duration = len(take.info.frames) - offset
    diffused.use_cyclic = loop
    diffused.use_auto_refresh = True
    to_render_size = nodes.new("CompositorNodeScale")
    scale_to_render_size(to_render_size)
    links.new(diffused.outputs["Image"], to_render_size.inputs["Image"])

    matte = nodes.new("CompositorNodeCryptomatteV2")
    matte.name = matte.label = "Mask"
    matte.source = "RENDER"
    matte.scene = scene
    matte.layer_name = f"{view_layer.name}.CryptoObject"
    matte.matte_id = ",".join(obj.name for obj in objects)
    links.new(render.outputs["Image"], matte.inputs["Image"])
    mask = matte.outputs["Matte"]
    if grow:
        grown = nodes.new("CompositorNodeDilateErode")
        grown.name = grown.label = "Grow"
        dilate_by_distance(grown, grow)
        links.new(mask, grown.inputs["Mask"])
        mask = grown.outputs["Mask"]
    if feather > 0:
        soft = nodes.new("CompositorNodeBlur")
        soft.name = soft.label = "Feather"
        gaussian_blur(soft, feather)
        links.new(mask, soft.inputs["Image"])
        mask = soft.outputs["Image"]

    strength = nodes.new("ShaderNodeMath")
    strength.name = strength.label = "Factor"
    strength.operation = "MULTIPLY"
    strength.use_clamp = True
    strength.inputs[1].default_value = factor
    links.new(mask, strength.inputs[0])

    mix = nodes.new("ShaderNodeMix")
    mix.name = mix.label = "Blend"
    mix.data_type = "RGBA"
    mix.blend_type = blend
    links.new(strength.outputs[0], mix.inputs["Factor"])
    links.new(render.outputs["Image"], mix.inputs[6])  # A (colour)
    links.new(to_render_size.outputs["Image"], mix.inputs[7])  # B (colour)

    links.new(mix.outputs[2], result)  # Result (colour)
    for i, node in enumerate(nodes):
        node.location = (i * 200 - 800, 0)
    return tree


def _check(take: Take, objects, blend, factor, offset, feather) -> None:
    if "color" not in take.info.layers:
        raise CompositeError(f"{take.root} has no 'color' layer to composite; it has {sorted(take.info.layers)}")
    if not take.path("color", take.info.frame_start).is_file():
        raise CompositeError(f"{take.root} lacks its first colour frame; finish or re-run the take")
    if not objects:
        raise CompositeError("no objects to mask: pass the objects whose pixels the diffused image replaces")
    if blend not in BLEND_MODES:
        raise CompositeError(f"blend is {blend!r}; accepted: {', '.join(BLEND_MODES)}")
    if not 0.0 <= factor <= 1.0:
        raise CompositeError(f"factor is {factor}; use 0 (render only) to 1 (full effect)")
    if feather < 0:
        raise CompositeError(f"feather is {feather} px; use 0 (hard edge) or more")
    frames = len(take.info.frames)
    if not 0 <= offset < frames:
        raise CompositeError(f"offset {offset} is outside the take's {frames} frames; use 0..{frames - 1}")


def _sequence(take: Take) -> bpy.types.Image:
    image = bpy.data.images.load(str(take.path("color", take.info.frame_start)), check_existing=False)
    image.name = f"{Path(take.root).name} diffused"
    image.source = "SEQUENCE"
    return image
