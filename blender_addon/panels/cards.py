import bpy

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
        if settings.use_matte:
            row = layout.row(align=True)
            row.prop(settings, "screen", text="")
            row.prop(settings, "matte_grow")
            row.prop(settings, "matte_feather")
        col = layout.column(align=True)
        col.prop(settings, "card_height")
        col.prop(settings, "card_depth_scale")
        row = layout.row(align=True)
        row.operator("stage.import_footage", icon="IMPORT")
        op = row.operator("stage.add_card", icon="IMAGE_PLANE")
        op.height, op.depth_scale = settings.card_height, settings.card_depth_scale

        cards = [obj for obj in context.scene.objects if obj.get("stage_card")]
        if cards:
            box = layout.box()
            for card in cards:
                row = box.row(align=True)
                row.operator("stage.select_card", text=card.name, icon="IMAGE_PLANE", emboss=False).name = card.name
                row.prop(card, '["stage_depth_scale"]', text="Depth")
                row.prop(card, "hide_render", text="", icon_only=True)
