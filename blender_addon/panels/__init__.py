"""The "Stage" tab of the 3D view's sidebar."""

from . import backend, cards, controlnet, prompt, shot, temporal

classes = (
    backend.STAGE_PT_backend,
    prompt.STAGE_UL_loras,
    prompt.STAGE_PT_prompt,
    controlnet.STAGE_UL_controls,
    controlnet.STAGE_PT_controlnet,
    temporal.STAGE_PT_temporal,
    cards.STAGE_PT_cards,
    shot.STAGE_PT_shot,
)
