"""Optical flow and warping: OpenCV DIS on the CPU by default, RAFT (torchvision) when asked and available.

Convention: `flow = estimate(a, b)` maps each pixel x of `a` to its position x + flow[x] in `b`, so
`warp(b, flow)` rebuilds `a` from `b` (backward warping; no holes, every output pixel is sampled).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from backend.params import ParamError, param

# name -> (finest scale at 960 px wide, patch size, patch stride, gradient descent iterations, variational
# iterations, median size). OpenCV's own presets, plus "coarse": ultrafast one level coarser, for flows that
# only have to find gross occlusion (a quarter of the cost at 240 px wide), and "balanced": medium's finer
# scale (half resolution rather than a quarter, which keeps motion boundaries sharp) with no variational
# refinement and a 5x5 median of the flow instead. The finest scale follows the image width (one level finer
# per halving), so small frames are not estimated from a few patches. bench/propagate.py measured the median
# against 4 refinement iterations on warm-started flows: half the cost (26 against 52 ms a flow at 480x270 on
# one core) and steadier output (warp error 1.11 against 1.19 x source): refinement smooths flow noise in
# space, the median removes the outliers that make a warped frame shimmer in time.
DIS_PRESETS = {
    "coarse": (3, 8, 4, 12, 0, 0),
    "ultrafast": (2, 8, 4, 12, 0, 0),
    "fast": (2, 8, 4, 16, 5, 0),
    "balanced": (1, 8, 4, 6, 0, 5),
    "medium": (1, 8, 3, 25, 5, 0),
}


@dataclass
class FlowParams:
    method: str = param("dis", choices=["dis", "raft"], help="dis: OpenCV on the CPU; raft: torchvision, needs weights")
    preset: str = param("balanced", choices=list(DIS_PRESETS), help="DIS speed/quality preset")
    scale: float = param(1.0, min=0.25, max=1.0, help="estimate flow at this fraction of the frame size")
    raft_weights: str = param("", help="a local torchvision RAFT state dict (.pth); required for method=raft")
    device: str = param("cpu", help="torch device for RAFT (cuda, cpu)")

    def validate(self) -> None:
        if self.method == "raft" and not self.raft_weights:
            raise ParamError("raft_weights", "method=raft needs a local RAFT weights file; or use method=dis")


def to_grey(image: np.ndarray) -> np.ndarray:
    """The uint8 luma flow is computed on."""
    if image.ndim == 2:
        return image if image.dtype == np.uint8 else np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


class DisFlow:
    """OpenCV's DIS flow. `init` (a previous estimate of the same pair's flow, e.g. the neighbouring frame's)
    warm-starts it, which holds large, steady motion that a cold start at the coarsest scale may miss."""

    def __init__(self, preset: str = "fast", scale: float = 1.0):
        if preset not in DIS_PRESETS:
            raise ValueError(f"DIS preset {preset!r} is unknown; choose one of {', '.join(DIS_PRESETS)}")
        self.finest, patch, stride, descent, variational, self.median = DIS_PRESETS[preset]
        self._width = None
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._dis.setPatchSize(patch)
        self._dis.setPatchStride(stride)
        self._dis.setGradientDescentIterations(descent)
        self._dis.setVariationalRefinementIterations(variational)
        # An OpenCV without setCoarsestScale (5.0 has it; it came late in 4.x) runs the full pyramid: `close` is then
        # only slower, not wrong.
        self._levels_settable = hasattr(self._dis, "setCoarsestScale")
        self.scale = scale

    def level(self, width: int) -> int:
        """The pyramid level DIS stops at for images `width` wide (0 is full size; one finer per halving of 960)."""
        return max(0, self.finest + round(np.log2(width / 960.0)))

    def work_size(self, shape) -> tuple[int, int]:
        """(w, h) of that level for images of `shape`. DIS only upsamples its result from there, so `raw` on
        images brought to this size (INTER_AREA, as DIS does) makes the same estimate without the full-size
        resizes in and out (of the images, the initial flow and the result); there DIS stops at level 0."""
        level = self.level(shape[1])
        return shape[1] >> level, shape[0] >> level

    def raw(self, a: np.ndarray, b: np.ndarray, init: np.ndarray | None = None, close: bool = False) -> np.ndarray:
        """Flow between two uint8 grey images of one size, at their own resolution.

        With `init`, DIS weighs the given flow against its own candidates patch by patch, so a good guess
        (the neighbouring frame's flow) holds motion that a cold start misses, and a bad one is dropped.
        (Warping `b` by the guess and estimating only the residual was tried: it held a small object's
        large motion better, but smeared it into uncovered background and cost 4 dB on the benchmark.)
        `close` says `init` is already within a few pixels (a prediction), so DIS refines it at the finest
        level only: the coarser levels exist to find large motion, and cost a quarter of the time.
        """
        if a.shape[1] != self._width:
            self._width = a.shape[1]
            self._dis.setFinestScale(self.level(self._width))
        if self._levels_settable:  # -1: the pyramid DIS picks for the image size
            self._dis.setCoarsestScale(self.level(self._width) if close and init is not None else -1)
        # Once given an initial flow, OpenCV's DIS keeps using a stored one on later calls even when none
        # is passed; passing zeros every time keeps each call independent of the ones before.
        start = init.copy() if init is not None else np.zeros(a.shape + (2,), np.float32)
        flow = self._dis.calc(a, b, start)
        if self.median:  # OpenCV's float median takes 1, 3 or 4 channels: one pass per component
            flow = cv2.merge([cv2.medianBlur(np.ascontiguousarray(flow[..., i]), self.median) for i in range(2)])
        return flow

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = to_grey(a), to_grey(b)
        if self.scale >= 1.0:
            return self.raw(a, b)
        height, width = a.shape
        return upscale_flow(self.raw(shrink(a, self.scale), shrink(b, self.scale)), (width, height))


def shrink(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def upscale_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flow field resized to `size` (w, h), its vectors scaled with it."""
    height, width = flow.shape[:2]
    if (width, height) == tuple(size):
        return flow
    out = cv2.resize(flow, size, interpolation=cv2.INTER_LINEAR)
    sx, sy = size[0] / width, size[1] / height
    if sx == sy:  # one contiguous pass instead of two strided ones (the same values)
        out *= sx
    else:
        out[..., 0] *= sx
        out[..., 1] *= sy
    return out


class RaftFlow:
    """torchvision's RAFT from a local state dict; loads once, runs on `device`."""

    def __init__(self, weights: str | Path, device: str = "cuda"):
        import torch
        from torchvision.models.optical_flow import raft_large, raft_small

        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"RAFT weights {path} do not exist; save torchvision's raft_large/raft_small state dict there "
                "or use flow method 'dis'"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = None
        for build in (raft_large, raft_small):  # the state dict's keys say which of the two it is
            candidate = build(weights=None)
            try:
                candidate.load_state_dict(state)
            except RuntimeError:
                continue
            model = candidate
            break
        if model is None:
            raise ValueError(f"{path} is not a torchvision raft_large or raft_small state dict")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self._torch = torch

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        torch = self._torch
        height, width = a.shape[:2]
        # RAFT wants sides that are multiples of 8 and at least 128 (its correlation pyramid).
        pad_h, pad_w = max(128, height + (-height % 8)) - height, max(128, width + (-width % 8)) - width

        def tensor(image):
            rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
            rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
            return (t / 127.5 - 1.0).to(self.device)

        with torch.inference_mode():
            flow = self.model(tensor(a), tensor(b), num_flow_updates=12)[-1]
        return flow[0].permute(1, 2, 0).cpu().numpy()[:height, :width].astype(np.float32)


def make_flow(params: FlowParams):
    if params.method == "raft":
        return RaftFlow(params.raft_weights, params.device)
    return DisFlow(params.preset, params.scale)


@lru_cache(maxsize=8)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs, ys


def sample_map(flow: np.ndarray, size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The remap coordinates x + flow, computed once and reused for every layer warped by one flow.

    With `size` (w, h): the coordinates of the flow upsampled to that size (as by `upscale_flow`), made by
    resizing the small map instead: resizing the pixel grid only scales and shifts it (apart from the rows and
    columns where the resize clamps at the edge, corrected after), so this is one small add and two resizes
    instead of three passes over a full-size flow.
    """
    xs, ys = _pixel_grid(*flow.shape[:2])
    xs, ys = xs + flow[..., 0], ys + flow[..., 1]
    if size is None or tuple(size) == flow.shape[1::-1]:
        return xs, ys
    xs, ys = cv2.resize(xs, size, interpolation=cv2.INTER_LINEAR), cv2.resize(ys, size, interpolation=cv2.INTER_LINEAR)
    scale, shift, columns, corrections = _grid_resize(flow.shape[1], size[0])
    cv2.addWeighted(xs, scale, xs, 0.0, shift, dst=xs)
    xs[:, columns] += corrections
    scale, shift, rows, corrections = _grid_resize(flow.shape[0], size[1])
    cv2.addWeighted(ys, scale, ys, 0.0, shift, dst=ys)
    ys[rows] += corrections[:, None]
    return xs, ys


@lru_cache(maxsize=16)
def _grid_resize(small: int, large: int) -> tuple[float, float, np.ndarray, np.ndarray]:
    """For pixel positions along one axis resized from `small` to `large` by cv2.resize (linear): the scale and
    shift that bring the resized positions back to the large grid, and where the resize clamped (at the edges),
    those positions and their corrections."""
    scale = large / small
    shift = scale / 2 - 0.5  # pixel centres: X = scale * ((X + 0.5) / scale - 0.5) + shift
    positions = np.arange(large)
    sampled = np.clip((positions + 0.5) / scale - 0.5, 0, small - 1)
    correction = (positions - (scale * sampled + shift)).astype(np.float32)
    clamped = np.flatnonzero(np.abs(correction) > 1e-6)
    return scale, shift, clamped, correction[clamped]


def warp(image: np.ndarray, coords: tuple[np.ndarray, np.ndarray], interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Sample `image` at `coords` (from sample_map); outside the frame takes the nearest edge pixel."""
    return cv2.remap(image, coords[0], coords[1], interpolation, borderMode=cv2.BORDER_REPLICATE)


CHOICE_TILE = (32, 128)  # rows, columns of the tiles in which `warp_chosen` decides which sides to sample


def warp_chosen(first: np.ndarray, second: np.ndarray, first_coords: tuple[np.ndarray, np.ndarray],
                second_coords: tuple[np.ndarray, np.ndarray], share: np.ndarray,
                interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """second' + share * (first' - second'), where x' is x warped by its coords (the output's size, like `share`,
    float32 in [0, 1]), computed tile by tile (CHOICE_TILE): a tile whose share is all 0 samples only `second`, all
    1 only `first` (its pixels are then first' itself, where the formula could round an ulp off it), a mixed
    tile both. Where one side is chosen for most of the frame, that is about half of the sampling and arithmetic
    of warping both whole. Remap samples every output pixel on its own, so a tile's pixels are the whole warp's."""
    height, width = share.shape
    out = np.empty((height, width) + first.shape[2:], np.float32)
    rows, columns = CHOICE_TILE
    starts = np.arange(0, width, columns)

    def sampled(image, coords, band, span):
        return cv2.remap(image, coords[0][band, span], coords[1][band, span], interpolation,
                         borderMode=cv2.BORDER_REPLICATE)

    for top in range(0, height, rows):
        band = slice(top, min(height, top + rows))
        # Each tile's kind: 0 all second, 2 all first, 1 mixed; neighbouring tiles of one kind go through one call.
        low = np.minimum.reduceat(share[band].min(axis=0), starts)
        high = np.maximum.reduceat(share[band].max(axis=0), starts)
        kinds = np.where(low >= 1.0, 2, np.where(high <= 0.0, 0, 1))
        changes = np.flatnonzero(np.diff(kinds)) + 1
        for first_tile, end_tile in zip(np.concatenate([[0], changes]), np.concatenate([changes, [len(kinds)]])):
            span = slice(starts[first_tile], min(width, starts[end_tile - 1] + columns))
            kind = kinds[first_tile]
            if kind == 2:
                out[band, span] = sampled(first, first_coords, band, span)
            elif kind == 0:
                out[band, span] = sampled(second, second_coords, band, span)
            else:
                a, b = sampled(first, first_coords, band, span), sampled(second, second_coords, band, span)
                weight = share[band, span]
                if a.ndim == 3:
                    weight = weight[..., None]
                out[band, span] = b + weight * (a - b)
    return out


def inside(coords: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Where the sampled position falls inside the frame (outside, the content was never seen)."""
    height, width = coords[0].shape
    x, y = coords
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def compose(flow_ab: np.ndarray, flow_bc: np.ndarray) -> np.ndarray:
    """flow a->c from a->b then b->c (used only to start an estimate, never as the result)."""
    return flow_ab + warp(flow_bc, sample_map(flow_ab))


def invert(flow_ab: np.ndarray, steps: int = 3) -> np.ndarray:
    """An approximate flow b->a from a->b by fixed-point steps v(y) = -flow_ab(y + v(y)) (a starting guess)."""
    guess = -flow_ab
    for _ in range(steps):
        guess = -warp(flow_ab, sample_map(guess))
    return guess


def _norm2(vectors: np.ndarray) -> np.ndarray:
    # Squares then one add: the same float32 result as einsum("ijk,ijk->ij"), about 8x faster.
    squares = vectors * vectors
    return squares[..., 0] + squares[..., 1]


def fb_confidence(flow_ab: np.ndarray, flow_ba: np.ndarray, coords_ab=None, slack: float = 1.0) -> np.ndarray:
    """A soft visibility in [0, 1] for each pixel of `a` in `b`, from forward-backward consistency.

    The tolerance grows with the motion (Sundaram et al.: 0.01 * (|w|^2 + |w'|^2) + 0.5), so fast but
    consistent motion still counts as visible; pixels whose match falls outside `b` get 0. `slack` widens
    it, for flows too coarse or noisy to judge anything finer than gross occlusion.
    """
    coords_ab = coords_ab if coords_ab is not None else sample_map(flow_ab)
    back = warp(flow_ba, coords_ab)
    err2 = _norm2(flow_ab + back)
    tol = slack * (0.01 * (_norm2(flow_ab) + _norm2(back)) + 0.5)
    conf = np.exp(-err2 / tol)
    conf[~inside(coords_ab)] = 0.0
    return conf.astype(np.float32)
