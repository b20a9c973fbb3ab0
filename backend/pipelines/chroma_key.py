"""Chroma key for green and blue screens, with despill. Needs no model weights.

Two keyers: `difference` (the default) judges a pixel by how far the screen channel leads the others, as a
share of the screen's own lead at that place (backend/pipelines/screen_model.py), so shadows and light
falloff on the screen, which change brightness only, key as screen; `distance` is the older distance to
one screen colour in the chroma plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from backend.params import ParamError, param
from backend.pipelines.chroma_edges import sample_screen, unmix_alpha, unmix_colour
from backend.pipelines.key_band import banded_key
from backend.pipelines.key_difference import difference_key
from backend.pipelines.key_fringe_width import with_fringe_radius
from backend.pipelines.key_interior import fill_interior
from backend.pipelines.screen_model import ScreenModel, estimate_screen, linear_light
from backend.pipelines.srgb import linear_to_srgb

KEY_COLOURS = {"green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}


@dataclass
class ChromaKeyParams:
    model: str = param("difference", choices=("difference", "distance"),
                       help="difference: screen channel's lead relative to the screen's own (shadow-proof); "
                            "distance: chroma distance to one screen colour (older keyer)")
    clean_plate: bool = param(False, help="difference: take the screen from the side input 'clean_plate' "
                                          "(an image of the empty screen) instead of estimating it from the shot")
    screen: str = param("green", choices=("green", "blue", "custom"), help="which screen colour to key")
    key_rgb: list[float] = param([0.0, 1.0, 0.0], help="screen colour in 0..1 when screen=custom")
    tolerance: float = param(0.12, min=0.0, max=1.0,
                             help="difference: share of the screen's lead a pixel may lose and still be screen; "
                                  "distance: chroma distance below which a pixel is screen")
    softness: float = param(0.2, min=0.0, max=1.0, help="how far past the tolerance a pixel counts as solid subject")
    despill: float = param(1.0, min=0.0, max=1.0, help="how much screen colour to remove from the subject")
    sample_screen: bool = param(True, help="green/blue: key the screen's real colour, sampled from the frame")
    edges: str = param("unmix", choices=("unmix", "ramp"),
                       help="unmix: solve fringe alpha against the nearby subject colour; ramp: distance ramp only")
    edge_radius: int = param(0, min=0, max=32,
                             help="unmix: how wide the fringe may be, in pixels (raise it for motion blur or soft "
                                  "focus); 0: measured from the shot (how wide its outline runs from screen to subject)")
    solve: str = param("band", choices=("band", "full"),
                       help="difference + unmix: band: solve at full size only the tiles where alpha can be other "
                            "than exactly 0 or 1 (a quick per-pixel test settles the rest); full: every pixel "
                            "(the reference: the same alpha, except within a few tens of pixels of the frame's edge)")
    fill_interior: bool = param(True, help="difference: partial alpha that no screen reaches (a shaded side lit by the "
                                           "screen's bounce, dark islands inside the figure) is solid; turn off for "
                                           "smoke, veils or glass")

    def validate(self) -> None:
        if len(self.key_rgb) != 3:
            raise ParamError("key_rgb", f"expected three numbers (r, g, b), got {len(self.key_rgb)}")

    @property
    def key(self) -> np.ndarray:
        rgb = self.key_rgb if self.screen == "custom" else KEY_COLOURS[self.screen]
        return np.asarray(rgb, dtype=np.float32)


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """The colour's chroma (Cb, Cr) plane of YCbCr (BT.601), where brightness does not matter."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([cb, cr], axis=-1)


def chroma_key(color: np.ndarray, params: ChromaKeyParams,
               screen: ScreenModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Key one RGB uint8 frame. Returns (despilled colour uint8, alpha float32 in [0, 1]).

    `screen`: the shot's screen model for the difference keyer (estimated from this frame when None). The
    difference keyer works in linear light (the frame is taken as sRGB-encoded), where edges mix linearly.
    edge_radius 0 is measured from this frame (the matte stage measures it once per shot, see with_fringe_radius).
    """
    if color.ndim != 3 or color.shape[2] < 3:
        raise ValueError(f"chroma_key expects an HxWx3 colour frame, got shape {color.shape}")
    if params.model == "difference":
        if screen is None:
            screen = estimate_screen([linear_light(color)], int(np.argmax(params.key)))
        if not params.edge_radius:
            params = with_fringe_radius(params, [linear_light(color)], screen)
        if screen is not None and params.solve == "band" and params.edges == "unmix":
            fringe, straight, alpha = banded_key(color, params, screen)
        else:
            fringe, straight, alpha = difference_key(linear_light(color), params, screen)
        out = np.ascontiguousarray(color[..., :3])
        if params.fill_interior and params.edges == "unmix" and screen is not None:
            alpha = fill_interior(alpha, out, screen.channel)
        if fringe is not None:
            unmixed = alpha[fringe] < 1.0          # a fringe pixel the interior fill made solid keeps its colour
            fringe, straight = (fringe[0][unmixed], fringe[1][unmixed]), straight[unmixed]
            out = out.copy()
            out[fringe] = np.round(np.clip(linear_to_srgb(straight), 0.0, 1.0) * 255.0).astype(np.uint8)
        return despill_uint8(out, params.key, params.despill), alpha
    rgb = color[..., :3].astype(np.float32) / 255.0
    params = with_fringe_radius(params, [], None)
    key = params.key
    if params.sample_screen and params.screen != "custom":
        key = sample_screen(rgb, key)
    key_chroma = _chroma(key[None, None, :])[0, 0]
    chroma = _chroma(rgb)
    # distance from the screen's chroma, normalised by the screen's own chroma strength
    strength = float(np.linalg.norm(key_chroma)) or 1.0
    dist = np.linalg.norm(chroma - key_chroma, axis=-1) / strength
    lo, hi = params.tolerance, params.tolerance + max(params.softness, 1e-6)
    alpha = np.clip((dist - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    if params.edges == "unmix":
        alpha = unmix_alpha(chroma, key_chroma, dist, lo, hi, alpha, params.edge_radius)
        rgb = unmix_colour(rgb, alpha, key)
    return despill(rgb, key, params.despill), alpha


def despill_uint8(rgb: np.ndarray, key: np.ndarray, amount: float) -> np.ndarray:
    """`despill` on 8-bit colour with OpenCV's saturating arithmetic (the same rule, a fraction of the time)."""
    channel = int(np.argmax(key))
    others = [c for c in range(3) if c != channel]
    planes = list(cv2.split(rgb))
    spill = cv2.subtract(planes[channel], cv2.max(planes[others[0]], planes[others[1]]))
    planes[channel] = cv2.addWeighted(planes[channel], 1.0, spill, -float(amount), 0.0)
    return cv2.merge(planes)


def despill(rgb: np.ndarray, key: np.ndarray, amount: float) -> np.ndarray:
    """Pull the screen's dominant channel down to the others so green fringes turn neutral."""
    out = rgb.copy()
    channel = int(np.argmax(key))
    others = [c for c in range(3) if c != channel]
    limit = np.maximum(rgb[..., others[0]], rgb[..., others[1]])
    spill = np.clip(rgb[..., channel] - limit, 0.0, None)
    out[..., channel] = rgb[..., channel] - amount * spill
    return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)

