"""Error text for a stranger: paths on the server named relative to the store, never absolute.

A message built from an OSError or a library error carries whatever path the server used (the store,
the home folder, the models file). Replies over the wire go through `redact`: the store's root becomes
`store/`, any other absolute path keeps only its last part, prefixed with `…/`.
"""

from __future__ import annotations

import os
import re

# an absolute POSIX path, or a Windows drive path, up to whitespace, a quote, a comma or a closing bracket
_ABSOLUTE = re.compile(r"(?<![\w.~:/])(?:[A-Za-z]:\\|/)[^\s'\",;)\]}]+")


def redact(text: str, store_root: str | os.PathLike | None = None) -> str:
    if store_root is not None:
        root = os.fspath(store_root).rstrip("/\\")
        if root:
            text = text.replace(root + os.sep, "store/").replace(root, "store")
    return _ABSOLUTE.sub(lambda m: "…/" + re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1], text)
