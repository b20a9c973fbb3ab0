import bpy

from ..properties import CARD_SHADOWS
from ..scene.card_shadow import STRENGTH_NODE, card_decal, card_shadow_mode
from ..scene.cards import LIT_NODE, RELIT_NODE, card_rendered, scene_cards
from .base import StagePanel


class STAGE_PT_cards(StagePanel, bpy.types.Panel):
    bl_label = "Cards"

    def draw(self, context):
        settings = context.scene.stage
        layout = self.layout
        layout.prop(settings, "takes_dir")
        layout.prop(settings, "footage_path")
        row = layout.row(align=True)
        row.prop(settings, "use_matte", toggle=True)
        row.prop(settings, "use_depth", toggle=True)
        row.prop(settings, "use_diffusion", toggle=True)
        row.prop(settings, "use_relight", toggle=True)
        if settings.use_matte:
            layout.prop(settings, "screen", text="")
            layout.prop(settings, "clean_plate")
            row = layout.row(align=True)  # two to a row: three cut "Feather" at the default width
            row.prop(settings, "matte_grow")
            row.prop(settings, "matte_feather")
        layout.prop(settings, "texture_upscale")
        col = layout.column(align=True)
        col.prop(settings, "character_height")
        col.prop(settings, "card_depth_scale")
        col.prop(settings, "card_shadow")
        row = layout.row(align=True)
        row.operator("stage.import_footage", icon="IMPORT")
        op = row.operator("stage.add_card", icon="IMAGE_PLANE")
        op.character_height, op.depth_scale = settings.character_height, settings.card_depth_scale
        op.shadow = settings.card_shadow

        cards = scene_cards(context.scene)
        if cards:
            box = layout.box()
            for card in cards:
                row = box.row(align=True)
                row.operator("stage.select_card", text=card.name, icon="IMAGE_PLANE", emboss=False).name = card.name
                material = card.active_material
                lit = material.node_tree.nodes.get(LIT_NODE) if material and material.node_tree else None
                if lit is not None:  # live: 1 lit by the scene's lights, 0 emission of the footage
                    row.prop(lit.outputs[0], "default_value", text="Lit", slider=True)
                relit = material.node_tree.nodes.get(RELIT_NODE) if material and material.node_tree else None
                if relit is not None:  # live: 0 as filmed, 1 relit (albedo and normals)
                    row.prop(relit.outputs[0], "default_value", text="Relit", slider=True)
                rendered = card_rendered(card)  # not hide_render itself: the card's timing keys it
                op = row.operator("stage.card_render", text="", emboss=False,
                                  icon="RESTRICT_RENDER_OFF" if rendered else "RESTRICT_RENDER_ON")
                op.name, op.render = card.name, not rendered
                if card.get("stage_has_shadow"):
                    draw_card_shadow(box, card)


def draw_card_shadow(box, card) -> None:
    """Whose shadow the card lays (a take with a shadow layer), and how dark the filmed one is."""
    mode = card_shadow_mode(card)
    row = box.row(align=True)
    for value, label, _ in CARD_SHADOWS:
        op = row.operator("stage.card_shadow", text=label, depress=value == mode)
        op.name, op.mode = card.name, value
    decal = card_decal(card)
    material = decal.active_material if decal is not None else None
    strength = material.node_tree.nodes.get(STRENGTH_NODE) if material and material.node_tree else None
    if strength is not None:  # live: 1 as filmed, 0 none
        box.prop(strength.outputs[0], "default_value", text="Filmed shadow", slider=True)
