"""Temporal metrics of a take, streamed frame by frame against its source footage.

warp error     flow is estimated on the source frames; output frame t is warped to t+1 and compared with
               output t+1 (mean squared error of [0, 1] colour over pixels the flow check calls visible).
               The same is measured on the source itself, so `warp_ratio` = output / source.
sharpness      warp error rewards blur, so beside it: the Laplacian variance of each gap's middle frame over
               that of its two keyframes. `sharpness_kept` divides that by the same ratio on the source, so
               content that is simply less detailed mid-gap does not count as lost sharpness; 1 = kept.
fidelity       when keyframes were stylized by a pixel-wise f, the ideal frame t is f(source t): PSNR to it.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from backend.pipelines.flow import DisFlow, fb_confidence, sample_map, to_grey, warp


def laplacian_variance(image: np.ndarray) -> float:
    grey = to_grey(image).astype(np.float32) / 255.0
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2)) / (255.0**2)
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


class WarpStep:
    """Warp error of one step t -> t+1, with flow (and its visibility mask) from the source frames."""

    def __init__(self, preset: str = "medium"):
        self.flow = DisFlow(preset)

    def masks(self, source_t: np.ndarray, source_t1: np.ndarray):
        a, b = to_grey(source_t), to_grey(source_t1)
        flow_back = self.flow(b, a)   # each pixel of t+1 in t
        flow_fwd = self.flow(a, b)
        coords = sample_map(flow_back)
        visible = fb_confidence(flow_back, flow_fwd, coords) > 0.5
        return coords, visible

    @staticmethod
    def error(frame_t: np.ndarray, frame_t1: np.ndarray, coords, visible: np.ndarray) -> float:
        warped = warp(frame_t, coords).astype(np.float32) / 255.0
        diff = (warped - frame_t1.astype(np.float32) / 255.0) ** 2
        diff = diff.mean(axis=2) if diff.ndim == 3 else diff
        return float(diff[visible].mean()) if visible.any() else 0.0


def metrics_report(
    source_frames_iter: Iterable[np.ndarray],
    output_frames_iter: Iterable[np.ndarray],
    keyframes: Sequence[int],
    stylize: Callable[[np.ndarray], np.ndarray] | None = None,
    flow_preset: str = "medium",
) -> dict:
    """Warp error, sharpness kept and (with a pixel-wise `stylize`) fidelity PSNR of a take.

    Frames are consumed in lockstep, two at a time; `keyframes` are 0-based positions in the sequence.
    """
    keys = sorted(set(int(k) for k in keyframes))
    step = WarpStep(flow_preset)
    out_err, src_err, lap_out, lap_src, psnrs = [], [], [], [], []
    prev_src = prev_out = None
    count = 0
    for index, (src, out) in enumerate(zip(source_frames_iter, output_frames_iter)):
        if src.shape[:2] != out.shape[:2]:
            raise ValueError(f"frame {index}: output {out.shape[:2]} and source {src.shape[:2]} differ in size")
        lap_out.append(laplacian_variance(out))
        lap_src.append(laplacian_variance(src))
        if stylize is not None and index not in keys:
            psnrs.append(psnr(out, stylize(src)))
        if prev_src is not None:
            coords, visible = step.masks(prev_src, src)
            out_err.append(step.error(prev_out, out, coords, visible))
            src_err.append(step.error(prev_src, src, coords, visible))
        prev_src, prev_out = src, out
        count += 1
    if count < 2:
        raise ValueError("metrics need at least two frames")

    report = {"frames": count, "keyframes": keys}
    out_arr, src_arr = np.array(out_err), np.array(src_err)
    median = float(np.median(out_arr))
    report.update(
        warp_error_mean=float(out_arr.mean()),
        warp_error_worst=float(out_arr.max()),
        warp_error_worst_step=int(out_arr.argmax()),
        source_warp_error_mean=float(src_arr.mean()),
        warp_ratio=float(out_arr.mean() / max(src_arr.mean(), 1e-12)),
        worst_step_over_median=float(out_arr.max() / max(median, 1e-12)),
    )
    kept, kept_raw = [], []
    for p, n in zip(keys, keys[1:]):
        if n - p < 2 or n >= count:
            continue
        mid = (p + n) // 2
        raw = lap_out[mid] / max(0.5 * (lap_out[p] + lap_out[n]), 1e-12)
        source_ratio = lap_src[mid] / max(0.5 * (lap_src[p] + lap_src[n]), 1e-12)
        kept_raw.append(raw)
        kept.append(raw / max(source_ratio, 1e-12))
    if kept:
        report.update(sharpness_kept=float(np.mean(kept)), sharpness_kept_worst=float(np.min(kept)),
                      sharpness_kept_raw=float(np.mean(kept_raw)))
    if psnrs:
        finite = [p for p in psnrs if np.isfinite(p)] or [99.0]
        report.update(psnr=float(np.mean(finite)), psnr_worst=float(np.min(finite)))
    return report
