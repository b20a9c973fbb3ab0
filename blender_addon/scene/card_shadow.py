"""The filmed shadow under a card: the take's `shadow` layer laid on the floor at the character's feet.

The shadow layer is the screen's darkening in the footage's frame (0 = none, 1 = the screen fully dark;
backend/pipelines/screen_shadow.py). From the render camera a floor point P lines up with the card point Q
where the camera's ray through P crosses the card's plane, so the floor at P should be darkened by the
footage's shadow at Q: the card's frame projected onto the floor from the camera. In front of the card
that reaches the frame below the feet, behind it the frame above them.

The decal is a flat square on the floor, a child of the card (it turns and scales with it: the "Face
Camera" constraint, the artist's moves) held at the floor's height by a world-space Limit Location (the
card's per-frame contact lift would otherwise sink it). Its material, evaluated per shading point:
  P in the card's space            Texture Coordinate › Object, object = the card
  the ray back to the camera        Geometry › Incoming, world → object (the decal shares the card's axes)
  Q = P - (P.y / d.y) d             the crossing with the card's plane y = 0
  the card's UV at Q                from the card mesh's own extent (frame width, height, below the feet)
  shadow s at that UV               the image sequence, Clip: no shadow outside the frame
  Transparent BSDF, colour 1 - k s  what the camera sees through it is multiplied, as the screen was
The decal is seen by camera rays only: it casts nothing, bounces nothing, and Incoming is always the
camera's ray there. The card's own (Blender's) shadow stays, goes (FILMED) or both show (BOTH). In Cycles
the scene's Min Transparent Bounces is raised to 1 (no Russian roulette on the decal: no speckle).
"""

from __future__ import annotations

import bpy

SHADOW_MODES = ("BLENDER", "FILMED", "BOTH")
SHADOW_LAYER = "shadow"
DECAL_FLAG = "stage_shadow_decal"
STRENGTH_NODE = "Filmed Shadow"
FLOOR_CONSTRAINT = "On the floor"
REACH = 2.0     # the decal reaches this many frame heights from the feet each way (far enough for a long shadow)
LIFT = 0.002    # metres above the floor: in front of it for the depth test, too little to see


def wants_decal(mode: str) -> bool:
    return mode in ("FILMED", "BOTH")


def card_decal(card: bpy.types.Object) -> bpy.types.Object | None:
    """The card's filmed-shadow decal, or None."""
    return next((child for child in card.children if child.get(DECAL_FLAG)), None)


def card_shadow_mode(card: bpy.types.Object) -> str:
    return card.get("stage_shadow", "BLENDER")


def card_extent(card: bpy.types.Object) -> tuple[float, float, float]:
    """The card frame's width, height and the metres of it below the origin, from its (undisplaced) mesh."""
    import numpy as np

    co = np.empty(len(card.data.vertices) * 3, np.float64)
    card.data.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    return float(np.ptp(co[:, 0])), float(np.ptp(co[:, 2])), float(-co[:, 2].min())


def add_decal(card: bpy.types.Object, image: bpy.types.Image, floor_z: float) -> bpy.types.Object:
    """A decal under `card` darkening the floor at height `floor_z` by `image` (the shadow sequence)."""
    width, height, below_feet = card_extent(card)
    reach = REACH * height
    mesh = bpy.data.meshes.new(f"{card.name} shadow")
    mesh.from_pydata([(-reach, -reach, 0.0), (reach, -reach, 0.0), (reach, reach, 0.0), (-reach, reach, 0.0)],
                     [], [(0, 1, 2, 3)])
    mesh.update()
    decal = bpy.data.objects.new(f"{card.name} shadow", mesh)
    for collection in card.users_collection:
        collection.objects.link(decal)
    decal.parent = card  # parent inverse stays identity: the decal's space is the card's
    decal[DECAL_FLAG] = True
    floor = decal.constraints.new("LIMIT_LOCATION")
    floor.name = FLOOR_CONSTRAINT
    floor.owner_space = "WORLD"
    floor.use_min_z = floor.use_max_z = True
    set_floor(card, floor_z)
    for ray in ("diffuse", "glossy", "transmission", "volume_scatter", "shadow"):
        setattr(decal, f"visible_{ray}", False)
    mesh.materials.append(_decal_material(decal.name, card, image, width, height, below_feet))
    return decal


def set_floor(card: bpy.types.Object, z: float) -> None:
    """The height of the floor the filmed shadow lies on (made at the card's location: where the feet stand;
    a card stood on its frame's edge, or a floor elsewhere, sets it here)."""
    decal = card_decal(card)
    if decal is not None:
        floor = decal.constraints[FLOOR_CONSTRAINT]
        floor.min_z = floor.max_z = z + LIFT


def no_roulette_through_decals(scene: bpy.types.Scene) -> None:
    """Cycles plays Russian roulette on transparent bounces past Min Transparent Bounces (default 0): a ray
    through a decal darkening by 60% survives 40% of the time, so the shadow renders as speckle at the
    samples a card is rendered with. One bounce without it makes the decal exact; nothing else changes."""
    cycles = getattr(scene, "cycles", None)
    if cycles is not None and cycles.min_transparent_bounces < 1:
        cycles.min_transparent_bounces = 1


def remove_decal(card: bpy.types.Object) -> None:
    decal = card_decal(card)
    if decal is None:
        return
    mesh, materials = decal.data, [slot.material for slot in decal.material_slots if slot.material]
    images = [node.image for m in materials for node in m.node_tree.nodes if node.type == "TEX_IMAGE" and node.image]
    bpy.data.objects.remove(decal)
    if mesh.users == 0:
        bpy.data.meshes.remove(mesh)  # first: the mesh holds the material
    for material in materials:
        if material.users == 0:
            bpy.data.materials.remove(material)
    for image in images:  # switching back and forth leaves no unused shadow sequences behind
        if image.users == 0:
            bpy.data.images.remove(image)


def set_shadow_strength(card: bpy.types.Object, strength: float) -> None:
    """How dark the filmed shadow lays: 1 as the screen was darkened, 0 not at all."""
    from .cards import CardError

    if not 0.0 <= strength <= 2.0:
        raise CardError(f"shadow strength is {strength}; use 0 (none) to 1 (as filmed), up to 2 (deeper)")
    decal = card_decal(card)
    if decal is None:
        raise CardError(f"{card.name} has no filmed shadow; set its shadow to Filmed or Both first")
    decal.active_material.node_tree.nodes[STRENGTH_NODE].outputs[0].default_value = strength


def _math(nodes, links, operation, a, b, c=None, clamp=False):
    node = nodes.new("ShaderNodeMath")
    node.operation = operation
    node.use_clamp = clamp
    for socket, value in zip(node.inputs, (a, b, c)):
        if value is None:
            continue
        if isinstance(value, bpy.types.NodeSocket):
            links.new(value, socket)
        else:
            socket.default_value = value
    return node.outputs[0]


def _decal_material(name, card, image, width, height, below_feet) -> bpy.types.Material:
    from ..compat import shader_nodes

    material = bpy.data.materials.new(name)
    nodes, links = shader_nodes(material).nodes, material.node_tree.links
    nodes.clear()

    in_card = nodes.new("ShaderNodeTexCoord")
    in_card.object = card
    point = in_card.outputs["Object"]
    incoming = nodes.new("ShaderNodeNewGeometry").outputs["Incoming"]
    to_card = nodes.new("ShaderNodeVectorTransform")
    to_card.vector_type, to_card.convert_from, to_card.convert_to = "VECTOR", "WORLD", "OBJECT"
    links.new(incoming, to_card.inputs["Vector"])
    ray = to_card.outputs["Vector"]

    p, d = nodes.new("ShaderNodeSeparateXYZ"), nodes.new("ShaderNodeSeparateXYZ")
    links.new(point, p.inputs[0])
    links.new(ray, d.inputs[0])
    along = _math(nodes, links, "DIVIDE", p.outputs["Y"], d.outputs["Y"])  # ray parallel to the card: 0, off-frame
    step = nodes.new("ShaderNodeVectorMath")
    step.operation = "SCALE"
    links.new(ray, step.inputs[0])
    links.new(along, step.inputs["Scale"])
    crossing = nodes.new("ShaderNodeVectorMath")
    crossing.operation = "SUBTRACT"
    links.new(point, crossing.inputs[0])
    links.new(step.outputs["Vector"], crossing.inputs[1])
    q = nodes.new("ShaderNodeSeparateXYZ")
    links.new(crossing.outputs["Vector"], q.inputs[0])

    uv = nodes.new("ShaderNodeCombineXYZ")
    links.new(_math(nodes, links, "MULTIPLY_ADD", q.outputs["X"], 1.0 / width, 0.5), uv.inputs["X"])
    links.new(_math(nodes, links, "MULTIPLY_ADD", q.outputs["Z"], 1.0 / height, below_feet / height), uv.inputs["Y"])
    texture = nodes.new("ShaderNodeTexImage")
    texture.name = texture.label = SHADOW_LAYER
    texture.image = image
    texture.extension = "CLIP"
    texture.interpolation = "Cubic"  # EEVEE's Linear (mipmapped) lookups leave faint streaks on this projection
    links.new(uv.outputs[0], texture.inputs["Vector"])

    strength = nodes.new("ShaderNodeValue")
    strength.name = strength.label = STRENGTH_NODE
    strength.outputs[0].default_value = 1.0
    dark = _math(nodes, links, "MULTIPLY", texture.outputs["Color"], strength.outputs[0], clamp=True)
    through = nodes.new("ShaderNodeBsdfTransparent")
    links.new(_math(nodes, links, "SUBTRACT", 1.0, dark, clamp=True), through.inputs["Color"])
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(through.outputs[0], output.inputs["Surface"])

    material.surface_render_method = "BLENDED"  # EEVEE: coloured (multiplying) transparency
    material.diffuse_color = (0.0, 0.0, 0.0, 0.15)  # the Solid viewport: a faint square, not a grey slab
    for i, node in enumerate(nodes):  # left to right in creation order, readable when opened
        node.location = (i * 200 - 1400, (i % 3) * -240)
    return material
