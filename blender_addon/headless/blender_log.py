"""Blender's own render log (a line per saved file, per encoded frame) into a file, not the terminal.

Blender writes it from C to file descriptor 1, so redirecting sys.stdout is not enough: the descriptor
itself points at the log while the block runs. Progress bars go to stderr and stay visible.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def blender_log_to(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 1)
            try:
                yield path
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
    finally:
        os.close(saved)
