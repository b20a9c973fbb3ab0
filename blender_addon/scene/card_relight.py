"""The relightable half of a card's material: albedo as base colour, camera-space normals as the shading
normal, and a "Relit" switch between them and the card as filmed.

The take's normal layer is camera space of the footage (x right, y up, z toward the camera, stored
(n + 1) / 2). A card stands facing its camera with the frame's right along local +X, up along +Z and
the front toward -Y, so that space is the card's own object space turned: (x, y, z) -> (x, -z, y). An
object-space Normal Map replaces the surface's normal instead of bending it, so the displaced relief
(which moves the silhouette and the shadows) and the normal layer (which shades) never add up twice.

"Relit" 1 uses albedo and normals, 0 the colour and the surface's own normal (today's look); it is a
Value node, so the panel's slider and a render see the same thing.

Also here: the displacement's fall-off inside the matte's edge. The depth across a matte edge jumps from
the figure to the background, and the polygons spanning the jump, half transparent, read as a streaky
fringe from the side; scaling the displacement by how far inside the matte a point is (an average of
alpha taps around it, 0 at the edge, 1 from `radius` inside) keeps the edge on the card's plane.
"""

from __future__ import annotations

import bpy

RELIT_NODE = "Relit"
RELIT_LAYERS = ("normal", "albedo")
EDGE_TAPS = 8  # directions sampled on each of two rings around a point for the edge fall-off


def _socket(sockets, name: str, kind: str):
    """A Mix node's socket by name and type (it has a Factor/A/B/Result of each data type)."""
    return next(s for s in sockets if s.name == name and s.type == kind)


def add_relight(nodes, links, textures: dict, principled, colour, relit: float = 1.0):
    """Wire the albedo / normal textures present in `textures` into `principled` behind a Relit switch.
    Returns the Relit Value node, or None when the take has neither layer (the card stays as filmed)."""
    if not any(layer in textures for layer in RELIT_LAYERS):
        return None
    switch = nodes.new("ShaderNodeValue")
    switch.name = switch.label = RELIT_NODE
    switch.outputs[0].default_value = relit
    if "albedo" in textures:
        mix = nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        mix.label = "as filmed / albedo"
        links.new(switch.outputs[0], _socket(mix.inputs, "Factor", "VALUE"))
        links.new(colour, _socket(mix.inputs, "A", "RGBA"))
        links.new(textures["albedo"].outputs["Color"], _socket(mix.inputs, "B", "RGBA"))
        links.new(_socket(mix.outputs, "Result", "RGBA"), principled.inputs["Base Color"])
    if "normal" in textures:
        split = nodes.new("ShaderNodeSeparateXYZ")
        links.new(textures["normal"].outputs["Color"], split.inputs[0])
        toward = nodes.new("ShaderNodeMath")  # camera z (toward the camera) is the card's -Y: 1 - z stored
        toward.operation = "SUBTRACT"
        toward.inputs[0].default_value = 1.0
        links.new(split.outputs["Z"], toward.inputs[1])
        card_space = nodes.new("ShaderNodeCombineXYZ")
        links.new(split.outputs["X"], card_space.inputs["X"])
        links.new(toward.outputs[0], card_space.inputs["Y"])
        links.new(split.outputs["Y"], card_space.inputs["Z"])
        normal_map = nodes.new("ShaderNodeNormalMap")
        normal_map.space = "OBJECT"
        links.new(card_space.outputs[0], normal_map.inputs["Color"])
        links.new(switch.outputs[0], normal_map.inputs["Strength"])  # 0: the surface's own normal
        links.new(normal_map.outputs["Normal"], principled.inputs["Normal"])
    return switch


def edge_falloff(nodes, links, uv, alpha_image, radius: float, aspect: float):
    """A 0..1 factor: 0 on and outside the matte's edge, rising to 1 at `radius` (a share of the frame's
    height) inside it. Returns the output socket."""
    import math

    total = None
    for ring in (0.5, 1.0):
        for k in range(EDGE_TAPS):
            angle = 2 * math.pi * k / EDGE_TAPS
            shift = nodes.new("ShaderNodeVectorMath")
            shift.operation = "ADD"
            links.new(uv, shift.inputs[0])
            shift.inputs[1].default_value = (ring * radius * math.cos(angle) / aspect, ring * radius * math.sin(angle), 0.0)
            tap = nodes.new("ShaderNodeTexImage")
            tap.image = alpha_image
            tap.extension = "EXTEND"
            tap.label = "edge tap"
            links.new(shift.outputs[0], tap.inputs["Vector"])
            if total is None:
                total = tap.outputs["Color"]
                continue
            add = nodes.new("ShaderNodeMath")
            add.operation = "ADD"
            links.new(total, add.inputs[0])
            links.new(tap.outputs["Color"], add.inputs[1])
            total = add.outputs[0]
    # mean alpha around the point: 0.5 on a straight edge, 1 a ring's radius inside -> 0..1
    ramp = nodes.new("ShaderNodeMapRange")
    ramp.clamp = True
    links.new(total, ramp.inputs["Value"])
    ramp.inputs["From Min"].default_value = 0.5 * 2 * EDGE_TAPS
    ramp.inputs["From Max"].default_value = 1.0 * 2 * EDGE_TAPS
    return ramp.outputs["Result"]


def set_card_relit(card: bpy.types.Object, relit: float) -> None:
    """1 = albedo and normals (lit like a body), 0 = the colour as filmed on the card's own surface."""
    from .cards import CardError  # cards.py builds materials with this module

    if not 0.0 <= relit <= 1.0:
        raise CardError(f"relit is {relit}; use a value from 0 (as filmed) to 1 (relit)")
    node = card.active_material.node_tree.nodes.get(RELIT_NODE) if card.active_material else None
    if node is None:
        raise CardError(f"{card.name} has no normal or albedo layer to relight with; run the normal and albedo "
                         "stages (or their previews) and make the card from a take that has them")
    node.outputs[0].default_value = relit
