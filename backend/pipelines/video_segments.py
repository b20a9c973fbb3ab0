"""Long shots as overlapping segments.

A shot of n frames is cut into segments of L frames (4k + 1) that start every L - O frames, so each shares
its first O frames with the end of the previous one. A segment is generated conditioned on those O frames
(the previous segment's output, given back as kept frames), then the shared frames are cross-faded from the
previous segment's version to the new one, so no boundary shows a jump. Each segment owns (writes) the frames
from its start to the next segment's start; its last O frames are handed to the next one. Only one segment's
frames are in memory at a time: memory stays flat as the shot grows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    index: int
    start: int        # first frame (index into the shot's frame list)
    length: int       # frames generated (4k + 1; past the shot's end the last input frame repeats)
    owned_end: int    # frames [start, owned_end) are written by this segment
    overlap: int      # frames shared with the previous segment (0 for the first)

    def frames(self, count: int) -> list[int]:
        """Shot indices of the generated frames, the last one repeated past the end of the shot."""
        return [min(self.start + i, count - 1) for i in range(self.length)]


def plan_segments(count: int, length: int, overlap: int) -> list[Segment]:
    if count < 1:
        return []
    stride = length - overlap
    segments = []
    start = 0
    while True:
        last = start + length >= count
        short = 1 + -(-(count - start - 1) // 4) * 4 if last else length  # the shortest 4k + 1 that covers the rest
        # past a shared stretch a segment needs more new frames than shared ones (Wan-Animate's own rule)
        least = 2 * overlap + 1 + (-(2 * overlap) % 4) if segments else 1
        length_here = min(length, max(short, least))
        owned_end = count if last else start + stride
        segments.append(Segment(len(segments), start, length_here, owned_end, overlap if segments else 0))
        if last:
            return segments
        start += stride


def segment_of(segments: list[Segment], index: int) -> Segment:
    """The segment that writes shot frame `index`."""
    for segment in segments:
        if segment.start <= index < segment.owned_end:
            return segment
    raise IndexError(index)


def crossfade(previous: np.ndarray, new: np.ndarray, position: int, overlap: int) -> np.ndarray:
    """Shared frame `position` (0-based) of `overlap`: mostly the previous segment's early on, the new one's late."""
    weight = (position + 1) / (overlap + 1)
    mixed = previous.astype(np.float32) * (1.0 - weight) + new.astype(np.float32) * weight
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def shot_noise(seed: int, first: int, count: int, shape: tuple[int, int, int], extra: int = 0):
    """The starting noise of latent frames [first, first + count) of a shot, `extra` reference frames before.

    Each latent frame's noise comes from its own generator (the seed and the frame's index in the shot), so
    the frames two segments share start from the same noise in both: with the shared frames also given as
    kept frames, both segments land on nearly the same images there, and the cross-fade has little to hide.
    A resumed segment gets the same noise as in an uninterrupted run.
    """
    import torch

    def frame(index: int):
        generator = torch.Generator("cpu").manual_seed((seed * 1_000_003 + index + 1) % 2**63)
        return torch.randn(shape, generator=generator)

    frames = [frame(-1 - r) for r in range(extra)] + [frame(first + j) for j in range(count)]
    return torch.stack(frames, dim=1)[None]   # (1, channels, frames, height, width)
