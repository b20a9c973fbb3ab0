"""The differences between the Blenders the add-on supports (4.5 LTS … 5.3), in one place.

Everything else in the add-on writes what it means ("the Mix Shader's factor", "image output",
"EEVEE", "the scene's compositor") and asks this module how the running Blender spells it.
Each helper checks for the feature itself, not the version number, so a point release that
back-ports a change still works.
"""

from __future__ import annotations

import bpy

# 5.0 added ImageFormatSettings.media_type (image / multilayer / video chosen before file_format)
HAS_MEDIA_TYPE = "media_type" in bpy.types.ImageFormatSettings.bl_rna.properties
# 5.0 composites through a node group on the scene; 4.x through the scene's own node_tree
HAS_COMPOSITING_GROUP = "compositing_node_group" in bpy.types.Scene.bl_rna.properties
# 4.2–4.5 call the new EEVEE "BLENDER_EEVEE_NEXT"; 5.0 calls it "BLENDER_EEVEE" again
_ENGINE_IDS = {item.identifier for item in bpy.types.RenderSettings.bl_rna.properties["engine"].enum_items}
EEVEE = "BLENDER_EEVEE" if "BLENDER_EEVEE" in _ENGINE_IDS else "BLENDER_EEVEE_NEXT"


def engine_id(engine: str) -> str:
    """The running Blender's identifier for `engine` as the add-on names it (CYCLES, BLENDER_EEVEE, ...)."""
    return EEVEE if engine in ("BLENDER_EEVEE", "BLENDER_EEVEE_NEXT") else engine


def engine_name(identifier: str) -> str:
    """The add-on's name for a render engine identifier of the running Blender (inverse of engine_id)."""
    return "BLENDER_EEVEE" if identifier in ("BLENDER_EEVEE", "BLENDER_EEVEE_NEXT") else identifier


def mix_factor(node) -> bpy.types.NodeSocket:
    """The factor input of a Mix Shader node: `Fac` before 5.0, `Factor` since."""
    return node.inputs["Factor"] if "Factor" in node.inputs else node.inputs["Fac"]


def media_type_settings(media_type: str) -> list[tuple[str, str]]:
    """The (attribute, value) pairs that choose an output kind before file_format is set:
    [("media_type", ...)] on 5.0+, nothing before (file_format alone decided it)."""
    return [("media_type", media_type)] if HAS_MEDIA_TYPE else []


def set_media_type(settings, media_type: str) -> None:
    """Choose IMAGE / MULTI_LAYER_IMAGE / VIDEO output where the Blender asks for it first (5.0+)."""
    for attr, value in media_type_settings(media_type):
        setattr(settings, attr, value)


def new_compositor(scene, name: str):
    """A fresh, empty compositor for `scene`: (node tree to fill, the socket the result goes into).

    5.0+: a new node group assigned to scene.compositing_node_group (a previous one stays in bpy.data).
    4.x: the scene's own compositor tree (scene.node_tree), emptied, ending in a Composite node; the
    Render Layers node cannot live in a group there."""
    if HAS_COMPOSITING_GROUP:
        tree = bpy.data.node_groups.new(name, "CompositorNodeTree")
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        output = tree.nodes.new("NodeGroupOutput")
        scene.compositing_node_group = tree
    else:
        scene.use_nodes = True
        tree = scene.node_tree
        tree.nodes.clear()
        output = tree.nodes.new("CompositorNodeComposite")
    return tree, output.inputs["Image"]


def scene_compositor(scene):
    """The node tree the scene composites with, or None."""
    return scene.compositing_node_group if HAS_COMPOSITING_GROUP else (scene.node_tree if scene.use_nodes else None)


def scale_to_render_size(node) -> None:
    """A Scale compositor node that stretches its image to the render size (a socket in 5.0, a property before)."""
    if "Type" in node.inputs:
        node.inputs["Type"].default_value = "Render Size"
        node.inputs["Frame Type"].default_value = "Stretch"
    else:
        node.space, node.frame_method = "RENDER_SIZE", "STRETCH"


def dilate_by_distance(node, pixels: int) -> None:
    """A Dilate/Erode node growing (negative: shrinking) its mask by `pixels`, by distance."""
    if "Type" in node.inputs:
        node.inputs["Type"].default_value = "Distance"
    else:
        node.mode = "DISTANCE"
    if "Size" in node.inputs:
        node.inputs["Size"].default_value = pixels
    else:
        node.distance = pixels


def gaussian_blur(node, radius: float) -> None:
    """A Blur node blurring by a Gaussian of `radius` pixels both ways."""
    if "Type" in node.inputs:
        node.inputs["Type"].default_value = "Gaussian"
    else:
        node.filter_type = "GAUSS"
    size = node.inputs.get("Size")
    if size is not None and size.type == "VECTOR":
        size.default_value = (radius, radius)
    else:  # older: whole-pixel sizes as properties
        node.size_x = node.size_y = round(radius)


def oidn_available() -> bool:
    """Whether this build's Cycles can denoise with OpenImageDenoise (some builds lack it). Asked through
    bpy: Cycles offers the OPENIMAGEDENOISE denoiser choice only when the build has it, so choosing it is
    refused otherwise; the scene's own choice is put back at once."""
    settings = getattr(bpy.context.scene, "cycles", None)
    if settings is None:  # Cycles is not enabled
        return False
    before = settings.denoiser
    try:
        settings.denoiser = "OPENIMAGEDENOISE"
    except TypeError:
        return False
    if before and before != "OPENIMAGEDENOISE":
        settings.denoiser = before
    return True


def shader_nodes(owner) -> bpy.types.NodeTree:
    """The node tree of a material or world, made on first use (4.x makes a new material without one;
    5.0 always has one and deprecates use_nodes)."""
    if owner.node_tree is None:
        owner.use_nodes = True
    return owner.node_tree
