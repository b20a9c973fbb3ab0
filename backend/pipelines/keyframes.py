"""Which frames become keyframes: uniform spacing, or adaptive from motion; scene cuts split the shot.

Adaptive: a keyframe is inserted where the motion since the last keyframe (mean optical-flow length on a
small grey thumbnail, as a fraction of the frame width) passes `motion_threshold`, no sooner than
`min_interval` and no later than `max_interval` frames after it. Fast motion gets keys close together,
a still shot few. A scene cut ends a segment: a jump in the colour histogram between neighbouring frames, or
a frame that the previous one, warped to it by optical flow, cannot explain (the cut residual, above
`cut_residual` grey levels or a jump over the segment's recent steps: a cut to another angle of the same set
keeps the histogram but no flow carries one picture onto the other):
the frame before the cut and the frame after it are both keyframes, so no propagation ever crosses a cut.
A user list of keyframes overrides the choice (cuts still split the segments).

Frames are read once, in order, one at a time; only two thumbnails are held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import cv2
import numpy as np

from backend.params import ParamError, param
from backend.pipelines.flow import DisFlow, sample_map, to_grey, warp


@dataclass
class KeyframeParams:
    mode: str = param("uniform", choices=["uniform", "adaptive"], help="how keyframes are spaced")
    interval: int = param(12, min=1, max=1000, help="uniform: frames between keyframes")
    min_interval: int = param(4, min=1, max=1000, help="adaptive: fewest frames between keyframes")
    max_interval: int = param(24, min=1, max=1000, help="adaptive: most frames between keyframes")
    motion_threshold: float = param(
        0.04, min=0.001, max=1.0, help="adaptive: motion since the last key, as a fraction of the frame width"
    )
    detect_cuts: bool = param(True, help="split the shot at scene cuts")
    cut_threshold: float = param(0.5, min=0.05, max=1.0, help="histogram distance (Bhattacharyya) that is a cut")
    cut_residual: float = param(
        20.0, min=0.0, max=255.0,
        help="mean grey-level difference left after warping the previous frame onto this one that is a cut "
             "(0 = histogram only); continuous motion leaves about 2-5, a cut 35 or more")
    keyframes: list[int] = param([], help="the artist's own keyframes (frame numbers); overrides mode")
    analysis_width: int = param(160, min=32, max=1024, help="thumbnail width for motion and cut analysis")

    def validate(self) -> None:
        if self.min_interval > self.max_interval:
            raise ParamError("min_interval", f"{self.min_interval} is above max_interval {self.max_interval}")


@dataclass
class KeyframePlan:
    """Keyframes (frame numbers, sorted) and segments (first, last) split at scene cuts."""

    keys: list[int]
    segments: list[tuple[int, int]] = field(default_factory=list)

    def segment_of(self, frame: int) -> tuple[int, int]:
        for first, last in self.segments:
            if first <= frame <= last:
                return first, last
        raise ValueError(f"frame {frame} is outside the planned frames")

    def bracket(self, frame: int) -> tuple[int | None, int | None]:
        """The keyframes at or before and at or after `frame` within its segment (None where there is none)."""
        first, last = self.segment_of(frame)
        before = [k for k in self.keys if first <= k <= frame]
        after = [k for k in self.keys if frame <= k <= last]
        return (before[-1] if before else None), (after[0] if after else None)

    def late_scenes(self) -> list[tuple[int, int, int | None]]:
        """Segments whose first frame is not a keyframe: (first frame, last frame before its first keyframe,
        that keyframe or None). Their opening frames can only be rebuilt backwards, one-sided."""
        late = []
        for first, last in self.segments:
            inside = [k for k in self.keys if first <= k <= last]
            if not inside or inside[0] != first:
                late.append((first, (inside[0] - 1) if inside else last, inside[0] if inside else None))
        return late

    def warnings(self) -> list[str]:
        """What an artist should know about the plan: scenes that open without a keyframe."""
        out = []
        for first, last, key in self.late_scenes():
            if first == self.segments[0][0]:
                where = f"the shot starts at frame {first}"
            else:
                where = f"a scene cut lands at frame {first}"
            frames = f"frame {first}" if last == first else f"frames {first}-{last}"
            out.append(f"{where} with no keyframe there: {frames} are rebuilt backwards from keyframe {key} only, "
                       f"and what keyframe {key} does not show takes a colour match of the frame itself; "
                       f"add keyframe {first} for a faithful result")
        return out

    def to_json(self) -> dict:
        return {"keys": self.keys, "segments": [list(s) for s in self.segments]}

    @classmethod
    def from_json(cls, data: dict) -> "KeyframePlan":
        return cls([int(k) for k in data["keys"]], [(int(a), int(b)) for a, b in data["segments"]])


def _histogram(rgb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [12, 6, 6], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, None).flatten()


def _thumbnail(image: np.ndarray, width: int) -> np.ndarray:
    height = max(8, round(image.shape[0] * width / image.shape[1]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def plan_keyframes(frames: Iterable[tuple[int, np.ndarray]], params: KeyframeParams) -> KeyframePlan:
    """Choose keyframes from (frame number, RGB uint8) pairs given in increasing frame order."""
    flow = DisFlow("medium")
    keys: list[int] = []
    segments: list[tuple[int, int]] = []
    last_key_thumb = prev_hist = prev_grey = None
    residuals: list[float] = []  # the cut residuals of the segment's recent steps
    seg_start = last_key = prev = None
    for number, image in frames:
        thumb = _thumbnail(image, params.analysis_width)
        hist = _histogram(thumb) if params.detect_cuts else None
        grey = to_grey(thumb)
        if prev is None:
            seg_start = last_key = number
            keys.append(number)
            last_key_thumb, prev_hist, prev, prev_grey = grey, hist, number, grey
            continue
        if number <= prev:
            raise ValueError(f"frames must come in increasing order; {number} came after {prev}")
        residual = cut_residual(flow, prev_grey, grey) if hist is not None and params.cut_residual else 0.0
        if hist is not None and (cv2.compareHist(prev_hist, hist, cv2.HISTCMP_BHATTACHARYYA) > params.cut_threshold
                                 or _residual_jump(residual, residuals, params.cut_residual)):
            residuals = []
            segments.append((seg_start, prev))
            if keys[-1] != prev:
                keys.append(prev)
            seg_start = last_key = number
            keys.append(number)
            last_key_thumb, prev_hist, prev, prev_grey = grey, hist, number, grey
            continue
        since = number - last_key
        if params.mode == "uniform":
            is_key = since >= params.interval
        else:
            is_key = since >= params.max_interval
            if not is_key and since >= params.min_interval:
                motion = flow(last_key_thumb, to_grey(thumb))
                is_key = float(np.linalg.norm(motion, axis=2).mean()) / thumb.shape[1] >= params.motion_threshold
        if is_key:
            keys.append(number)
            last_key, last_key_thumb = number, grey
        prev_hist, prev, prev_grey = hist, number, grey
        residuals = (residuals + [residual])[-CUT_MEMORY:]
    if prev is None:
        raise ValueError("no frames to choose keyframes from")
    segments.append((seg_start, prev))
    if keys[-1] != prev:
        keys.append(prev)  # every frame lies between two keyframes of its segment
    if params.keyframes:
        keys = _user_keys(params.keyframes, segments)
    return KeyframePlan(sorted(set(keys)), segments)


CUT_MEMORY = 8    # steps of recent cut residuals a jump is judged against
CUT_JUMP = 6.0    # a step this many times the recent median residual is a cut (a cut within one set: 1 -> 12)
CUT_FLOOR = 5.0   # ... if it also leaves this many grey levels (sensor noise on a still shot stays below)


def _residual_jump(residual: float, recent: list[float], absolute: float) -> bool:
    """Whether a step's cut residual says cut: above `absolute`, or a jump over the recent steps'."""
    if not absolute:
        return False
    if residual > absolute:
        return True
    return len(recent) >= 3 and residual > CUT_FLOOR and residual > CUT_JUMP * float(np.median(recent))


def cut_residual(flow: DisFlow, before: np.ndarray, after: np.ndarray) -> float:
    """Mean grey-level difference between `after` and `before` warped onto it by optical flow (thumbnails)."""
    if before.shape != after.shape:
        return np.inf
    warped = warp(before, sample_map(flow(after, before)))
    return float(cv2.absdiff(warped, after).mean())


def _user_keys(user: list[int], segments: list[tuple[int, int]]) -> list[int]:
    first, last = segments[0][0], segments[-1][1]
    outside = [k for k in user if not first <= k <= last]
    if outside:
        raise ParamError("keyframes", f"{outside} lie outside the shot's frames {first}..{last}")
    bare = [s for s in segments if not any(s[0] <= k <= s[1] for k in user)]
    if bare:
        raise ParamError(
            "keyframes", f"the segment {bare[0][0]}..{bare[0][1]} (between scene cuts) has no keyframe; add one"
        )
    return sorted(set(user))
