"""Synthetic green-screen footage with a known true alpha, and a tiny ONNX matting net for rembg."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SCREEN = np.array([40, 190, 60], dtype=np.float32)   # a lit green screen is never pure (0, 255, 0)


def to_linear(encoded: np.ndarray) -> np.ndarray:
    """0..255 sRGB-encoded values -> linear light 0..1 (a camera mixes subject and screen in linear light)."""
    from backend.pipelines.srgb import srgb_to_linear

    return srgb_to_linear(np.clip(np.asarray(encoded, np.float32) / 255.0, 0.0, 1.0))


def to_encoded(linear: np.ndarray) -> np.ndarray:
    from backend.pipelines.srgb import linear_to_srgb

    return linear_to_srgb(linear) * 255.0


def mix(alpha: np.ndarray, subject: np.ndarray, screen: np.ndarray) -> np.ndarray:
    """alpha * subject + (1 - alpha) * screen, in linear light; inputs and output 0..255 encoded floats."""
    a = alpha[..., None]
    return to_encoded(a * to_linear(subject) + (1 - a) * to_linear(screen))
SUPERSAMPLE = 8


def figure_coverage(height: int, width: int, shift: int = 0) -> np.ndarray:
    """True alpha of a figure (head, body, arm): polygons drawn 8x larger then averaged, so edges are antialiased."""
    s = SUPERSAMPLE
    big = np.zeros((height * s, width * s), np.uint8)
    cx = (width // 2 + shift) * s
    cv2.ellipse(big, (cx, int(0.25 * height * s)), (int(0.09 * width * s), int(0.12 * height * s)), 0, 0, 360, 255, -1)
    body = np.array([[cx - 0.16 * width * s, 0.40 * height * s], [cx + 0.15 * width * s, 0.38 * height * s],
                     [cx + 0.10 * width * s, 0.95 * height * s], [cx - 0.12 * width * s, 0.95 * height * s]], np.int32)
    cv2.fillPoly(big, [body], 255)
    cv2.line(big, (cx + int(0.14 * width * s), int(0.42 * height * s)), (cx + int(0.33 * width * s), int(0.25 * height * s)),
             255, thickness=int(0.04 * width * s))
    return cv2.resize(big.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)


def subject_colours(height: int, width: int) -> np.ndarray:
    """Skin, red shirt and blue jeans, shaded top to bottom."""
    y = np.linspace(0, 1, height)[:, None, None]
    colour = np.where(y < 0.37, [220, 170, 140], np.where(y < 0.65, [190, 40, 50], [50, 70, 150]))
    shade = 0.8 + 0.2 * np.cos(np.linspace(0, np.pi, width))[None, :, None]
    return np.broadcast_to(colour * shade, (height, width, 3)).astype(np.float32)


def green_screen_frame(height: int = 128, width: int = 128, *, shift: int = 0, spill: float = 0.0,
                       noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 frame, true alpha): the subject over the screen; `spill` tints the subject's edge green."""
    alpha = figure_coverage(height, width, shift)
    fg = subject_colours(height, width)
    if spill:
        rim = cv2.GaussianBlur(1.0 - alpha, (0, 0), 2.0)[..., None]  # light bounced off the screen, near the edge
        fg = mix(1 - spill * rim[..., 0], fg, np.broadcast_to(SCREEN, fg.shape))
    frame = mix(alpha, fg, np.broadcast_to(SCREEN, fg.shape))
    if noise:
        frame = frame + np.random.default_rng(seed).normal(0, noise, frame.shape)
    return np.clip(np.round(frame), 0, 255).astype(np.uint8), alpha


def soft_iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    return float(np.minimum(alpha, truth).sum() / np.maximum(alpha, truth).sum())


def export_subject_net(path: Path) -> Path:
    """A one-layer ONNX net (hand-set weights, not trained) scoring how little green a pixel has: high on the subject.

    rembg's u2net_custom session feeds it 320x320 ImageNet-normalised RGB and reads output 0, channel 0.
    """
    import torch

    conv = torch.nn.Conv2d(3, 1, kernel_size=1)
    with torch.no_grad():
        conv.weight[:] = torch.tensor([0.5, -1.0, 0.5]).view(1, 3, 1, 1) * 4.0   # (r + b)/2 - g
        conv.bias.zero_()
    net = torch.nn.Sequential(conv, torch.nn.Sigmoid()).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net, torch.zeros(1, 3, 320, 320), str(path), input_names=["input"], output_names=["mask"],
                      dynamo=False)
    return path


def shadow_coverage(height: int, width: int, shift: int = 0) -> np.ndarray:
    """Where the figure's shadow falls on the screen: a soft ellipse to the side of its feet, 0..1."""
    shadow = np.zeros((height, width), np.float32)
    cv2.ellipse(shadow, (width // 2 + shift + int(0.22 * width), int(0.90 * height)),
                (int(0.26 * width), int(0.07 * height)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(shadow, (0, 0), 0.02 * width)


def lit_screen(height: int, width: int, falloff: float = 0.45, warm: float = 0.0) -> np.ndarray:
    """The screen as lit: darker towards the right (`falloff`), and towards the right tinted by a warm lamp (`warm`)."""
    x = np.linspace(0, 1, width)[None, :, None]
    level = 1.0 - falloff * x
    tint = SCREEN + warm * x * np.array([150.0, 0.0, 40.0])   # red and blue added: the screen's lead shrinks
    return np.broadcast_to(tint * level, (height, width, 3)).astype(np.float32)


def shadowed_screen_frame(height: int = 128, width: int = 128, *, shadow: float = 0.55, falloff: float = 0.45,
                          warm: float = 0.0, shift: int = 0, noise: float = 1.5,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(frame, true alpha, true shadow 0..1, clean plate): the figure on an unevenly lit screen, casting a shadow."""
    alpha = figure_coverage(height, width, shift)
    cast = shadow * shadow_coverage(height, width, shift)
    plate = lit_screen(height, width, falloff, warm)
    screen = to_encoded(to_linear(plate) * (1.0 - cast[..., None]))    # the shadow takes light away, linearly
    frame = mix(alpha, subject_colours(height, width), screen)
    rng = np.random.default_rng(seed)
    frame = frame + rng.normal(0, noise, frame.shape)
    plate = plate + rng.normal(0, noise, plate.shape)
    as_uint8 = lambda image: np.clip(np.round(image), 0, 255).astype(np.uint8)   # noqa: E731
    return as_uint8(frame), alpha, cast * (1 - alpha), as_uint8(plate)


def bounce_lit_frame(height: int = 128, width: int = 128, bounce: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """(frame, true alpha): a pale figure whose right half is in shade, lit there only by light bounced off the
    screen, so its colour there is the screen's hue at a lower level, as a mix of subject and screen would be."""
    alpha = figure_coverage(height, width)
    lit = to_linear(np.array([200.0, 215.0, 150.0]))                   # a pale yellow-green costume
    shaded = 0.15 * lit + bounce * 0.5 * to_linear(SCREEN)           # the screen's green light, little else
    right = (np.arange(width) > width // 2 + 2)[None, :, None]
    subject = to_encoded(np.where(right, shaded, lit) * np.ones((height, width, 1), np.float32))
    frame = mix(alpha, subject, np.broadcast_to(SCREEN, (height, width, 3)))
    return np.clip(np.round(frame), 0, 255).astype(np.uint8), alpha


def islands_frame(height: int = 128, width: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(frame, true alpha, dark island mask, hole mask): a red figure with a dark patch of the screen's hue inside
    its body (a dark costume detail in green bounce light: subject) and a ring of arm around real screen (a hole)."""
    s = SUPERSAMPLE
    big = np.zeros((height * s, width * s), np.uint8)
    cv2.rectangle(big, (int(0.30 * width * s), int(0.20 * height * s)), (int(0.62 * width * s), int(0.95 * height * s)), 255, -1)
    cv2.circle(big, (int(0.78 * width * s), int(0.45 * height * s)), int(0.14 * width * s), 255, int(0.05 * width * s))
    alpha = cv2.resize(big.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[:height, :width]
    island = (np.abs(xx - 0.46 * width) < 0.07 * width) & (np.abs(yy - 0.55 * height) < 0.08 * height)
    hole = (xx - 0.78 * width) ** 2 + (yy - 0.45 * height) ** 2 < (0.09 * width) ** 2
    subject = np.where(island[..., None], SCREEN * 0.35, np.array([190.0, 40.0, 50.0]))
    frame = mix(alpha, subject.astype(np.float32), np.broadcast_to(SCREEN, (height, width, 3)))
    return np.clip(np.round(frame), 0, 255).astype(np.uint8), alpha, island, hole


def hair_fan_frame(height: int = 128, width: int = 128, strands: int = 40,
                   thickness: float = 1.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame, true alpha, strand pixels): a skin-coloured head and shoulders with a fan of brown strands about a
    pixel thick, crowding into a dense (mixed, never solid) blob where they leave the head."""
    s = SUPERSAMPLE
    head, hair = np.zeros((height * s, width * s), np.uint8), np.zeros((height * s, width * s), np.uint8)
    cx, cy = width // 2 * s, int(0.62 * height) * s
    cv2.ellipse(head, (cx, cy), (int(0.14 * width * s), int(0.17 * height * s)), 0, 0, 360, 255, -1)
    cv2.rectangle(head, (cx - int(0.23 * width * s), cy + int(0.12 * height * s)), (cx + int(0.23 * width * s), height * s), 255, -1)
    for angle in np.radians(np.linspace(-50, 50, strands)):
        start = (cx + int(0.11 * width * s * np.sin(angle)), cy - int(0.14 * height * s * np.cos(angle)))
        end = (cx + int(0.31 * width * s * np.sin(angle)), cy - int(0.36 * height * s * np.cos(angle)))
        cv2.line(hair, start, end, 255, thickness=int(thickness * s))
    a_head, a_hair = (cv2.resize(m.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)
                      for m in (head, hair))
    a_hair = a_hair * (1.0 - a_head)
    truth = a_head + a_hair
    linear = (a_head[..., None] * to_linear(np.array([225.0, 170.0, 140.0])) + a_hair[..., None] * to_linear(np.array([70.0, 45.0, 30.0]))
              + (1.0 - truth)[..., None] * to_linear(SCREEN))
    frame = np.clip(np.round(to_encoded(linear)), 0, 255).astype(np.uint8)
    return frame, truth, (a_hair > 0.02) & (a_head < 0.02)


def motion_blurred_frame(height: int = 160, width: int = 160, blur: int = 13,
                         shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(frame, true alpha): the figure moving sideways `blur` pixels during the exposure (mixed in linear light)."""
    truth = figure_coverage(height, width, shift)
    kernel = np.full((1, blur), 1 / blur, np.float32)
    alpha = cv2.filter2D(truth, -1, kernel)
    colour = cv2.filter2D(to_linear(subject_colours(height, width)) * truth[..., None], -1, kernel)
    frame = to_encoded(colour + (1 - alpha[..., None]) * to_linear(SCREEN))
    return np.clip(np.round(frame), 0, 255).astype(np.uint8), alpha
