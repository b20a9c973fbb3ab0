"""Propagation: rebuild every frame from its two neighbouring stylized keyframes (EbSynth's job, done better).

For a frame t between keyframes p and n, each keyframe is warped to t by optical flow estimated directly
between the *source* frames t and k (never chained frame to frame, so errors do not accumulate). Each side
gets a per-pixel confidence from
  - forward-backward consistency of the flow pair t->k, k->t (occlusions, flow failures, off-frame), and
  - how well the warped source keyframe reproduces the source frame t (appearance check),
and the two sides are blended by confidence times temporal closeness. Where one side is occluded the other
fills in; where both are unsure the temporal weights decide. Alpha and depth use the same warps and weights.

`blend` "guided" (the default) does not blend warped keyframes' colour: it applies each keyframe's colour model,
carried to t, to frame t's own pixels and adds one side's residual per region (backend/pipelines/propagate_guided.py
explains why). "confidence" is the older blend of warped colour by confidence; `blend` also offers the two baselines
it is measured against, "warp_crossfade" and "crossfade" (backend/pipelines/propagate_baselines.py).

The parts: propagate_sides.py (a keyframe ready to warp, a side warped to t, the gap's flow chains, where each flow
estimate starts), propagate_guided.py, propagate_baselines.py; this module holds the frame and gap API, each side's
warp and trust, and the order of the work (which side runs in which thread).
"""

from __future__ import annotations

import dataclasses
import itertools
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np

from backend.params import ParamError, param
from backend.pipelines import ink_model, ink_pairs
from backend.pipelines.colour_model import key_model, warp_coefficients
from backend.pipelines.cv_threads import beside_our_threads
from backend.pipelines.flow import (
    DIS_PRESETS,
    DisFlow,
    FlowParams,
    fb_confidence,
    make_flow,
    sample_map,
    shrink,
    to_grey,
    upscale_flow,
    warp,
)
from backend.pipelines.propagate_baselines import crossfade, weighted_blend
from backend.pipelines.propagate_guided import RegionChoice, guided, residual_detail
from backend.pipelines.propagate_layers import fit_width, resize
from backend.pipelines.propagate_sides import (
    ANALYSIS_WIDTH,
    CHAIN_WIDTH,
    CHECK_WIDTH,
    FB_SLACK,
    FlowStarts,
    KeyView,
    Side,
    appearance_mismatch,
    blend_weight,
    closer_flow,
    consecutive_flows,
    gap_flows,
)

BLENDS = ("guided", "confidence", "warp_crossfade", "crossfade")


@dataclass
class PropagateParams:
    blend: str = param("guided", choices=list(BLENDS),
                       help="guided: keyframes' colour models applied to each frame, residual chosen per region; "
                            "confidence: warped colour blended; the others are baselines")
    flow_method: str = param("dis", choices=["dis", "raft"], help="optical flow: dis (CPU) or raft (weights needed)")
    flow_preset: str = param("balanced", choices=list(DIS_PRESETS), help="DIS preset of the flows that warp keyframes")
    check_preset: str = param("coarse", choices=list(DIS_PRESETS),
                              help="DIS preset of the reverse flows used only for the occlusion check")
    flow_scale: float = param(1.0, min=0.25, max=1.0, help="estimate flow at this fraction of the frame size")
    raft_weights: str = param("", help="local torchvision RAFT state dict, for flow_method=raft")
    ink: str = param("edges", choices=["edges", "carried"],
                     help="guided: edges: ink lines redrawn on each frame's own edges (ink_model) where the "
                          "keyframe's follow its source's edges; carried: carried along the flow as drawn")
    appearance_sigma: float = param(
        10.0, min=1.0, max=255.0, help="grey levels of source mismatch at which a warped keyframe loses trust"
    )

    def validate(self) -> None:
        if self.flow_method == "raft" and not self.raft_weights:
            raise ParamError("raft_weights", "flow_method=raft needs a local RAFT weights file; or use dis")

    def flow_params(self) -> FlowParams:
        return FlowParams(self.flow_method, self.flow_preset, self.flow_scale, self.raft_weights)


@dataclass
class Keyframe:
    """A stylized keyframe: its source frame and its layers (color uint8 HxWx3; alpha, depth HxW float32)."""

    frame: int
    source: np.ndarray
    layers: dict[str, np.ndarray]

    def __post_init__(self):
        if "color" not in self.layers:
            raise ValueError(f"keyframe {self.frame} has no color layer")
        if self.layers["color"].dtype != np.uint8:
            raise ValueError(f"keyframe {self.frame}: color must be uint8 RGB, got {self.layers['color'].dtype}")
        if self.layers["color"].shape != self.source.shape:
            raise ValueError(
                f"keyframe {self.frame}: stylized color is {self.layers['color'].shape}, the source frame is "
                f"{self.source.shape}; resize the stylized keyframe to the footage size"
            )
        for name, layer in self.layers.items():  # colour stays uint8; every other layer is float32
            if name != "color" and layer.dtype != np.float32:
                self.layers[name] = layer.astype(np.float32)
        self.grey = to_grey(self.source)




class Propagator:
    """Rebuilds frames from bracketing keyframes.

    Flow is always estimated directly between frame t and a keyframe, but where it *starts* matters for
    large motion, so each estimate is started from the best guess at hand:
      - a prediction, when frames come in order: the same keyframe's flow for frame t-1, carried to frame t
        by the gap's consecutive-frame flow t -> t-1. It is within a few pixels, so DIS only refines it at its
        finest level (`DisFlow.raw(close=True)`), which the full pyramid costs a third more than; else
      - the same keyframe's flow for the neighbouring frame (a warm start), else
      - on a gap's first frame, for the next keyframe, the gap's chain from that frame to it, else
      - for the farther keyframe, the nearer keyframe's flow composed with the key-to-key flow of the gap.
    `prepare_gap` estimates those chains once per gap, composed from consecutive-frame flows through the gap
    (small: they are only starts), and keeps the consecutive flows back in time for the predictions. Flows
    are kept only for the two live keyframes.

    Speed: the two keyframes' sides are independent when each starts on its own (every frame but the first
    after a restart), so the farther one runs in a second thread (OpenCV releases the GIL) with its own DIS
    objects; the blend then runs in two bands of rows, one in each thread. The result does not depend on the
    schedule. Colour is warped as float32 (a copy kept per live keyframe): OpenCV's cubic remap is twice as
    fast on floats as on bytes, and the blend rounds once instead of after each warp.
    The reverse flows, only used for the occlusion check, are estimated at CHECK_WIDTH directly.
    The flows that warp keyframes are estimated at DIS's finest pyramid level (`DisFlow.work_size`: half
    size at 960 px wide) and upsampled once for the warp, as DIS itself would; their warm starts and
    compositions live at that size too.
    """

    def __init__(self, params: PropagateParams | None = None):
        self.params = params or PropagateParams()
        flow = self.params.flow_params()
        self.flow = make_flow(flow)
        self.dis = isinstance(self.flow, DisFlow)
        check = dataclasses.replace(flow, preset=self.params.check_preset)
        # One (flow, check) pair per side: a DIS object keeps buffers, so two threads never share one.
        self._estimators = [(self.flow, make_flow(check) if self.dis else self.flow)]
        if self.dis:
            self._estimators.append((make_flow(flow), make_flow(check)))
            # The gap's consecutive-frame chains, forward and backward, one DIS object for each thread.
            self._chains = (DisFlow(self.params.check_preset), DisFlow(self.params.check_preset))
        self._pool: ThreadPoolExecutor | None = None
        self.scale = flow.scale if self.dis else 1.0
        self._keys: dict[int, KeyView] = {}                            # the live keyframes, ready to warp
        self._starts = FlowStarts()                                     # where each flow estimate starts
        self._choice = RegionChoice()  # guided: last frame's choice of side per region
        self._used: dict[int, tuple[int, np.ndarray]] = {}  # keyframe -> (t, the flow t -> key that warped frame t)

    def _in_parallel(self, first, second):
        """(first(), second()), the second in the side thread."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="propagate-side")
        later = self._pool.submit(second)
        try:
            result = first()
        except BaseException:
            wait([later])  # the side thread's DIS objects must be free before anything else uses them
            raise
        return result, later.result()

    # -- the gap between two keyframes -----------------------------------------------------------------

    def prepare_gap(self, prev: Keyframe, next: Keyframe, between: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
        """Key-to-key flows of a gap; `between` are the source frames strictly inside it, in order.

        Returns, at CHAIN_WIDTH, {"forward": prev->next, "backward": next->prev, "back_steps": the flows
        i -> i-1 for every frame i after prev up to next, stacked} and, when the gap has frames, the next
        keyframe's flows with the gap's first frame ("first_to_next", "next_to_first"), so that frame starts
        both sides at once. Keep them (they are small) and hand them back with `use_gap` after a restart
        instead of reading the gap again.
        """
        if not self.dis:
            return {}
        with beside_our_threads(2):
            if next.frame in self._keys:
                steps = self._gap_steps(prev, next, between)
            else:  # the next keyframe's colour model, the gap's biggest cost, is made in the side thread meanwhile
                steps, self._keys[next.frame] = self._in_parallel(lambda: self._gap_steps(prev, next, between),
                                                                  lambda: self._make_view(next))
        flows = gap_flows(*steps)
        self.use_gap(prev.frame, next.frame, flows)
        return flows

    def gap_ahead(self, prev: Keyframe, next: Keyframe, between: Iterable[np.ndarray]) -> tuple[dict, object]:
        """A later gap's (flows, next keyframe's view), as `prepare_gap` makes them, in the caller's thread while
        another runs `frame` on the current gap: it touches nothing `frame` uses (the chains' own DIS objects, a
        new view). One at a time, and never beside `prepare_gap`. Hand both to `use_gap_ahead` when its frames start."""
        if not self.dis:
            return {}, None
        with beside_our_threads(2):
            steps = self._gap_steps(prev, next, between)
            view = self._make_view(next)
        return gap_flows(*steps), view

    def use_gap_ahead(self, prev: int, next: int, flows: dict[str, np.ndarray], view) -> None:
        self.use_gap(prev, next, flows)
        if view is not None:
            self._keys.setdefault(next, view)

    def _gap_steps(self, prev: Keyframe, next: Keyframe, between: Iterable[np.ndarray]
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The gap's consecutive-frame flows at CHAIN_WIDTH, forward and backward, prev's grey to next's.
        Only the chain-size greys are kept (a few KB a frame); the frames themselves stream through."""
        # The key-to-key flows only start the farther keyframe's estimate on a gap's first frame, where DIS
        # refines them, so they are the chains of consecutive-frame flows at CHAIN_WIDTH, composed. (Refining
        # them with a full-size DIS pass cost 8% of the benchmark's time and bought no quality.)
        start, end = (self._work(self._grey(key.grey)) for key in (prev, next))  # = their views' greys[0]
        chain_size = fit_width(start.shape, CHAIN_WIDTH)
        inside = (self._work(self._grey(image)) for image in between)
        greys = [resize(grey, chain_size) for grey in itertools.chain([start], inside, [end])]
        return consecutive_flows(self._chains[0], greys), consecutive_flows(self._chains[1], greys[::-1])

    def use_gap(self, prev: int, next: int, flows: dict[str, np.ndarray]) -> None:
        self._starts.gaps = {(prev, next): flows}

    def key_flows(self, t: int) -> dict[int, np.ndarray]:
        """The flows t -> keyframe that warped frame t's sides, by keyframe, at the size they were estimated (DIS's
        work size; `sample_map(flow, size)` brings them to a frame's): for measuring them (bench/flow_real.py)."""
        return {key: flow for key, (at, flow) in self._used.items() if at == t}

    # -- one frame -------------------------------------------------------------------------------------

    def frame(self, t: int, source: np.ndarray, prev: Keyframe | None, next: Keyframe | None) -> dict[str, np.ndarray]:
        """The layers of frame t from the keyframes before and after it (either may be None, not both)."""
        if prev is None and next is None:
            raise ValueError(f"frame {t} has no keyframe on either side")
        for key in (prev, next):
            if key is not None and key.frame == t:
                return {name: layer.copy() for name, layer in key.layers.items()}
        if prev is not None and next is not None and not prev.frame < t < next.frame:
            raise ValueError(f"frame {t} is not between keyframes {prev.frame} and {next.frame}")
        if self.params.blend == "crossfade":
            return crossfade(t, prev, next)
        with beside_our_threads(2):
            return self._rebuild(t, source, prev, next)

    def _rebuild(self, t: int, source: np.ndarray, prev: Keyframe | None, next: Keyframe | None
                 ) -> dict[str, np.ndarray]:
        live = {key.frame for key in (prev, next) if key is not None}
        self._keys = {k: v for k, v in self._keys.items() if k in live}
        self._starts.warm = {k: v for k, v in self._starts.warm.items() if k[0] in live}
        self._used = {k: v for k, v in self._used.items() if k in live}
        greys = self._greys(source)
        keys = [key for key in (prev, next) if key is not None]
        keys.sort(key=lambda key: abs(t - key.frame))  # the nearer keyframe first: its flow starts the other's
        for key in keys:
            self._key_view(key)
        if len(keys) == 2:
            self._carry_ink_alike(keys)
        gap = (next.frame - prev.frame) if prev is not None and next is not None else None

        def side(slot: int, key: Keyframe, flows: dict[int, dict[str, np.ndarray]]):
            closeness = 1.0 if gap is None else 1.0 - abs(t - key.frame) / gap
            return self._warp_side(slot, t, greys, key, closeness, source.shape[1::-1], flows)

        if len(keys) == 2 and self.dis and self._starts_alone(t, keys[1].frame):
            sides = list(self._in_parallel(lambda: side(0, keys[0], {}), lambda: side(1, keys[1], {})))
        else:  # the farther side starts from the nearer one's flows
            flows: dict[int, dict[str, np.ndarray]] = {}
            sides = [side(slot, key, flows) for slot, key in enumerate(keys)]
        if self.params.blend == "guided":
            return guided(sides, source, tuple(key.frame for key in keys), self._choice, self._in_parallel)
        return weighted_blend(sides, self._in_parallel)

    def _greys(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """An image's grey at the work size of the warping flows, at the appearance check's and at the
        occlusion check's size."""
        grey = self._grey(image)
        analysis = resize(grey, fit_width(grey.shape, ANALYSIS_WIDTH))
        return self._work(grey), analysis, resize(analysis, fit_width(grey.shape, CHECK_WIDTH))

    def _grey(self, image: np.ndarray) -> np.ndarray:
        return shrink(to_grey(image), self.scale)

    def _work(self, grey: np.ndarray) -> np.ndarray:
        """A grey at the work size of the warping flows."""
        return resize(grey, self.flow.work_size(grey.shape) if self.dis else grey.shape[1::-1])

    def _key_view(self, key: Keyframe) -> KeyView:
        view = self._keys.get(key.frame)
        if view is None:
            view = self._keys[key.frame] = self._make_view(key)
        return view

    def _carry_ink_alike(self, keys: list[Keyframe]) -> None:
        """A gap's two keyframes treat their ink alike: where one's lines follow its source's edges only loosely (kept
        carried, KeyModel.loose_ink) and the other's closely (redrawn on edges, KeyModel.ink), as a silhouette style's
        keyframes may fall either side of ink_model.AGREEMENT, the other's view is made again with its ink carried.
        Mixed, neither side's model drew the lines where the other side's region was chosen (a disc crossing a
        checkerboard, tests/backend/test_ink_pairs.py: under 5% of its outline drawn mid-gap)."""
        views = [self._keys[key.frame] for key in keys]
        loose = [view.model is not None and view.model.loose_ink is not None for view in views]
        if not any(loose):
            return
        for key, view in zip(keys, views):
            if view.model is not None and view.model.ink is not None:
                self._keys[key.frame] = self._make_view(key, carried=True)

    def _make_view(self, key: Keyframe, carried: bool = False) -> KeyView:
        """A keyframe ready to warp: a function of the keyframe alone, so it may be made in another thread (`carried`:
        its ink kept carried, see `_carry_ink_alike`)."""
        model = None
        if self.params.blend == "guided":
            model = key_model(key.source, key.layers["color"], ink=self.params.ink == "edges", carried=carried)
        layers = {name: layer if name != "color" else model.residual if model is not None else layer.astype(np.float32)
                  for name, layer in key.layers.items()}
        view = KeyView(self._greys(key.grey), layers, model)
        view.carries_literal = model is not None and bool(model.literal[..., 3].any())
        if model is not None:
            view.detail = residual_detail(model, view.greys[1].shape[1::-1])
        if model is not None and model.loose_ink is not None:
            view.carried_ink = np.ascontiguousarray(model.literal[..., 3])
            pairs = ink_pairs.fit(key.source, model.ink_amount)
            view.ink_pairs = pairs if pairs.agreement >= ink_pairs.AGREEMENT else None
        return view

    def _directions(self) -> tuple[str, ...]:
        return ("to_key",) if self.params.blend == "warp_crossfade" else ("to_key", "from_key")

    def _starts_alone(self, t: int, key: int) -> bool:
        """Whether every flow of `key`'s side can start without the other side's (see FlowStarts.start)."""
        return all(self._starts.own(t, key, d) is not None for d in self._directions())

    def _warp_side(self, slot: int, t: int, greys, key: Keyframe, closeness: float, size, flows: dict) -> Side:
        flow, check = self._estimators[slot]
        grey, grey_small, grey_check = greys
        view = self._keys[key.frame]
        key_grey, key_small, key_check = view.greys
        flow_tk = self._starts.estimate(flow, t, key.frame, "to_key", grey, key_grey, flows)  # each pixel of t in the key
        direct = flow_tk
        if self.params.blend != "warp_crossfade":  # (the EbSynth-like baseline keeps the direct flow)
            small_coords = sample_map(flow_tk, grey_small.shape[1::-1])
            mismatch = appearance_mismatch(key_small, small_coords, grey_small)
            chained = self._starts.chained(t, key.frame, grey.shape[1::-1]) if self.dis else None
            if chained is not None:
                flow_tk, small_coords = closer_flow(flow_tk, small_coords, mismatch, chained, key_small, grey_small)
        self._used[key.frame] = (t, flow_tk)
        coords = sample_map(flow_tk, size)
        layers = {}
        for name, layer in view.layers.items():
            if name == "color" and view.model is not None:
                continue  # guided: the residual is sampled in `_guided`, only where this side is chosen
            # Cubic keeps the colour's detail through the warp; linear keeps alpha and depth within range.
            method = cv2.INTER_CUBIC if name == "color" else cv2.INTER_LINEAR
            layers[name] = warp(layer, coords, method)
        if self.params.blend == "warp_crossfade":
            return Side(layers, np.full(size[::-1], blend_weight(1.0, closeness), np.float32))
        # Visibility is smooth, so it is judged small and upsampled: occlusion by forward-backward consistency
        # at CHECK_WIDTH (the reverse flow, only used here, is estimated at that size directly), appearance at
        # ANALYSIS_WIDTH. The weight is made here, in this side's thread.
        flow_kt = self._starts.estimate(check, t, key.frame, "from_key", key_check, grey_check, flows)
        flow_check = upscale_flow(direct, grey_check.shape[1::-1])  # the trust is the direct flow's (see `closer_flow`)
        visible = fb_confidence(flow_check, flow_kt, sample_map(flow_check), slack=FB_SLACK)
        visible = resize(visible, grey_small.shape[1::-1], cv2.INTER_LINEAR)
        appearance = np.exp(-((mismatch / self.params.appearance_sigma) ** 2))
        confidence = visible * appearance
        small_weight = blend_weight(confidence, closeness)
        if view.model is not None:
            coeffs = warp_coefficients(view.model.coeffs, small_coords)
            side = Side(layers, None, coeffs, small_weight, confidence, view.model.by_colour, closeness, view=view,
                         coords=coords)
            side.detail = warp(view.detail, small_coords, cv2.INTER_LINEAR)
            if view.model.ink is not None:
                side.ink = view.model.ink
                side.ink_gate = ink_model.near(warp(view.model.ink_amount, coords, cv2.INTER_NEAREST))
                side.ink_colour = warp_coefficients(view.model.ink_colour, small_coords)
            elif view.model.loose_ink is not None:
                side.ink_colour = warp_coefficients(view.model.ink_colour, small_coords)
                side.carried_ink = warp(view.carried_ink, coords, cv2.INTER_NEAREST)
            return side
        return Side(layers, resize(small_weight, size, cv2.INTER_LINEAR))



def bracket(t: int, keys: list[int]) -> tuple[int | None, int | None]:
    """The keyframes at or before and at or after t (keys sorted)."""
    import bisect

    i = bisect.bisect_left(keys, t)
    if i < len(keys) and keys[i] == t:
        return t, t
    return (keys[i - 1] if i > 0 else None), (keys[i] if i < len(keys) else None)
