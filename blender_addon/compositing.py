"""The stylize set-up in the compositor: the diffused sequence over the base render, through one
object's mask (grown or shrunk, feathered), with a blend mode and a factor, so that one element can
"vibrate" over a steady background.

Blender 5.0 keeps the compositor in a node group (`scene.compositing_node_group`) with a Group Output
and sockets for what used to be node properties; 4.2 - 4.5 use `scene.node_tree` with a Composite node.
"""

from __future__ import annotations

from pathlib import Path

import bpy

TREE_NAME = "Stage Stylize"


def stylize_compositor(scene, diffused_first_frame: str | Path, obj, *, grow: int = 0, feather: int = 0,
                       blend: str = "MIX", factor: float = 1.0, frame_start: int = 1, frames: int = 1):
    """Build (or rebuild) the compositor set-up; returns the node tree."""
    if obj is None:
        raise ValueError("choose the object to stylize (Stage > Prompt & model > Object)")
    view_layer = scene.view_layers[0]
    view_layer.use_pass_object_index = True
    if obj.pass_index == 0:  # 0 is "no index": give the object one nobody else uses
        obj.pass_index = max((o.pass_index for o in scene.objects), default=0) + 1

    tree = _tree(scene)
    nodes, links = tree.nodes, tree.links
    nodes.clear()
    render = nodes.new("CompositorNodeRLayers")
    render.scene = scene

    diffused = nodes.new("CompositorNodeImage")
    diffused.image = bpy.data.images.load(str(diffused_first_frame), check_existing=True)
    diffused.image.source = "SEQUENCE" if frames > 1 else "FILE"
    diffused.frame_start, diffused.frame_duration = frame_start, frames
    diffused.use_auto_refresh = True

    mask = nodes.new("CompositorNodeIDMask")
    _set(mask, "Index", "index", obj.pass_index)
    _set(mask, "Anti-Alias", "use_antialiasing", True)
    links.new(render.outputs["Object Index"], mask.inputs["ID value"])
    edge = mask.outputs["Alpha"]
    if grow:
        dilate = nodes.new("CompositorNodeDilateErode")
        _set(dilate, "Size", "distance", grow)
        links.new(edge, dilate.inputs["Mask"])
        edge = dilate.outputs["Mask"]
    if feather:
        blur = nodes.new("CompositorNodeBlur")
        if "Size" in blur.inputs:
            blur.inputs["Size"].default_value = (feather, feather)
        else:
            blur.size_x = blur.size_y = feather
        links.new(edge, blur.inputs["Image"])
        edge = blur.outputs["Image"]

    mix = _mix(nodes, blend)
    scaled = nodes.new("ShaderNodeMath")
    scaled.operation = "MULTIPLY"
    scaled.inputs[1].default_value = factor
    links.new(edge, scaled.inputs[0])
    links.new(scaled.outputs[0], mix["factor"])
    links.new(render.outputs["Image"], mix["a"])
    links.new(diffused.outputs["Image"], mix["b"])
    _output(tree, mix["result"])
    for i, node in enumerate(nodes):
        node.location = (i * 220, 0)
    return tree


def _tree(scene):
    if hasattr(scene, "compositing_node_group"):  # Blender 5.0+
        tree = bpy.data.node_groups.get(TREE_NAME) or bpy.data.node_groups.new(TREE_NAME, "CompositorNodeTree")
        if not any(i.item_type == "SOCKET" and i.in_out == "OUTPUT" for i in tree.interface.items_tree):
            tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        scene.compositing_node_group = tree
        return tree
    scene.use_nodes = True
    return scene.node_tree


def _set(node, socket: str, prop: str, value) -> None:
    if socket in node.inputs:
        node.inputs[socket].default_value = value
    else:
        setattr(node, prop, value)


def _mix(nodes, blend: str) -> dict:
    try:
        mix = nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        mix.blend_type = blend
        return {"factor": mix.inputs[0], "a": mix.inputs[6], "b": mix.inputs[7], "result": mix.outputs[2]}
    except RuntimeError:  # before 4.5 the compositor has its own MixRGB
        mix = nodes.new("CompositorNodeMixRGB")
        mix.blend_type = blend
        return {"factor": mix.inputs[0], "a": mix.inputs[1], "b": mix.inputs[2], "result": mix.outputs[0]}


def _output(tree, socket) -> None:
    if hasattr(bpy.context.scene, "compositing_node_group"):
        out = tree.nodes.new("NodeGroupOutput")
        tree.links.new(socket, out.inputs[0])
    else:
        out = tree.nodes.new("CompositorNodeComposite")
        tree.links.new(socket, out.inputs["Image"])
