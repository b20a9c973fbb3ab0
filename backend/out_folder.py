"""The take folder a `dstage run` writes (`--out`): checked before the run, left as it was if the run fails.

A failed run removes what it added (frames, take.json, folders), so the corrected command runs into the
same folder; the frames it computed stay in the job store and are not computed again. An interrupted run
(Ctrl-C) keeps its frames in `--out`, since running the same command again finishes it.
"""

from __future__ import annotations

import os
from pathlib import Path


class OutFolderError(ValueError):
    """An `--out` that cannot hold a take; the message names it and the fix."""


def check_out(out: str | os.PathLike, inputs: list[tuple[str, str | os.PathLike]]) -> Path:
    """Refuse an --out that is a file, or that is one of the inputs or inside one (it would become a take)."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise OutFolderError(f"--out {path} is a file; give a folder for the take (it is created if missing)")
    real = path.resolve()
    for flag, given in inputs:
        source = Path(given).expanduser().resolve()
        if real == source or (source.is_dir() and real.is_relative_to(source)):
            raise OutFolderError(f"--out {path} is {'the same folder as' if real == source else 'inside'} {flag} "
                                 f"{given}; write the take to a folder outside the input")
    return path


class OutFolder:
    """Remembers what `--out` held before the run; `restore()` removes whatever the run added."""

    def __init__(self, path: Path):
        self.path = path
        self.existed = path.exists()
        self.before = self._entries() if self.existed else set()
        self.top = path  # the highest folder the run will create (Take.create makes missing parents too)
        while not self.top.parent.exists():
            self.top = self.top.parent

    def _entries(self) -> set[Path]:
        out = set()
        for root, dirs, files in os.walk(self.path):
            out.update(Path(root) / name for name in dirs + files)
        return out

    def restore(self) -> None:
        if not self.path.exists():
            return
        added = self._entries() - self.before
        for entry in sorted(added, key=lambda p: len(p.parts), reverse=True):  # files before their folders
            try:
                entry.rmdir() if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            except OSError:
                pass  # best effort: a folder someone else wrote into stays
        if not self.existed:
            folder = self.path
            while True:
                try:
                    folder.rmdir()
                except OSError:
                    break
                if folder == self.top:
                    break
                folder = folder.parent
