"""Errors with a message for the artist, importable from every layer (models, loaders, pipelines, stages).

They live here rather than in backend/stages/base.py (which re-exports them) because importing anything
under backend.stages first registers every stage, and stages import the loaders: a loader importing
backend.stages.base would import itself in a circle.
"""

from __future__ import annotations


class Cancelled(Exception):
    """Raised inside a stage when the job was cancelled; the runner stops cleanly."""


class StageError(RuntimeError):
    """A failure with a message for the artist: what went wrong, on which frame, and how to fix it."""

    def __init__(self, message: str, code: str = "stage_failed", frame: int | None = None):
        super().__init__(message)
        self.code = code
        self.frame = frame
