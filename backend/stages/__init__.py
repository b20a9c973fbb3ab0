"""Stages by name. Importing this package registers each one (one module per stage)."""

from backend.stages import albedo  # noqa: F401
from backend.stages import depth  # noqa: F401
from backend.stages import diffuse  # noqa: F401
from backend.stages import matte  # noqa: F401
from backend.stages import normal  # noqa: F401
from backend.stages import preview_depth  # noqa: F401
from backend.stages import preview_relight  # noqa: F401
from backend.stages import propagate  # noqa: F401
from backend.stages import retime  # noqa: F401
from backend.stages import upscale  # noqa: F401
