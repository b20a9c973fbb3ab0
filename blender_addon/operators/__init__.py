"""One operator per user action; each file is thin: read settings, call scene helpers or jobs, report."""

from . import (add_card, backend_connect, backend_start, collections, import_footage, render_passes, setup_shot,
               stylize_scene)

classes = (
    backend_start.STAGE_OT_backend_start,
    backend_connect.STAGE_OT_backend_connect,
    render_passes.STAGE_OT_render_passes,
    stylize_scene.STAGE_OT_stylize_scene,
    import_footage.STAGE_OT_import_footage,
    add_card.STAGE_OT_add_card,
    setup_shot.STAGE_OT_setup_shot,
    *add_card.list_classes,
    *collections.classes,
)
