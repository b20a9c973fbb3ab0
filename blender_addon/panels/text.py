"""Text that fits the sidebar: at its default width (about 291 px) a label holds about 40 characters
of Blender's UI font before it is cut with an ellipsis, so long lines wrap instead."""

from __future__ import annotations

import textwrap

LINE_CHARS = 38  # at the default sidebar width, with the panel's margins


def wrap(text: str, width: int = LINE_CHARS, max_lines: int = 6) -> list[str]:
    """`text` as lines of at most `width` characters (words kept whole where they fit), at most `max_lines`."""
    lines = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1] + "…"
    return lines


def labels(layout, text: str, *, icon: str = "NONE", width: int = LINE_CHARS, max_lines: int = 6) -> None:
    """Draw `text` as wrapped labels; the icon goes on the first line."""
    for i, line in enumerate(wrap(text, width, max_lines)):
        layout.label(text=line, icon=icon if i == 0 else "NONE")


def device_text(device: str) -> str:
    """The backend's device string as a person reads it: "cpu: x86_64" -> "CPU (x86_64)"."""
    kind, _, detail = device.partition(":")
    kind, detail = kind.strip(), detail.strip()
    if not kind:
        return "unknown"
    name = kind.upper() if kind.lower() in ("cpu", "cuda", "mps", "xpu") else kind
    return f"{name} ({detail})" if detail else name
