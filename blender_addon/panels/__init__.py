"""The "Stage" tab of the 3D view's sidebar."""

from . import backend, cards, controlnet, prompt, shot, temporal

# registration order is the sidebar's order: Cards first (where an artist starts), then the backend
classes = (
    cards.STAGE_PT_cards,
    backend.STAGE_PT_backend,
    prompt.STAGE_UL_loras,
    prompt.STAGE_PT_prompt,
    prompt.STAGE_PT_stylize,
    controlnet.STAGE_UL_controls,
    controlnet.STAGE_PT_controlnet,
    temporal.STAGE_PT_temporal,
    shot.STAGE_PT_shot,
)
