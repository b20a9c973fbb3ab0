"""Flows that keep up with a fast object: each side's flow t -> keyframe is taken per pixel from the direct estimate
or the chain through the gap's consecutive frames, whichever rebuilds frame t better (propagate_sides.closer_flow)."""

import numpy as np
import pytest
import torch

from backend.pipelines import propagate_sides
from backend.pipelines.flow import sample_map, warp
from backend.pipelines.preview import preview_grade
from backend.pipelines.propagate import Keyframe, PropagateParams, Propagator
from tests.backend.temporal_fixtures import Shot, region_psnr

torch.set_num_threads(1)

GAP = 12


def fast_disc() -> Shot:
    # A textured disc crossing 60 px of a 192 px frame in one gap while the textured background pans under it.
    return Shot(size=(192, 128), count=GAP + 1, pan=(2.0, 0.5), disc_speed=5.0, disc_radius=14, disc_start=30)


def carried(shot: Shot) -> dict[str, float]:
    """Mean absolute error (grey levels) of each keyframe's source warped to every frame of the gap with the flows
    the propagator warped it by, on the disc and over the whole frame; and the pixel-wise style's PSNR on the disc."""
    prev = Keyframe(0, shot.frame(0), {"color": preview_grade(shot.frame(0))})
    nxt = Keyframe(GAP, shot.frame(GAP), {"color": preview_grade(shot.frame(GAP))})
    propagator = Propagator(PropagateParams())
    propagator.prepare_gap(prev, nxt, (shot.frame(t) for t in range(1, GAP)))
    disc_errors, frame_errors, disc_db = [], [], []
    for t in range(1, GAP):
        out = propagator.frame(t, shot.frame(t), prev, nxt)["color"]
        disc = shot.layers(t)["alpha"] > 0.5
        disc_db.append(region_psnr(out, preview_grade(shot.frame(t)), disc))
        flows = propagator.key_flows(t)
        assert sorted(flows) == [0, GAP]
        for key, flow in flows.items():
            warped = warp(shot.frame(key), sample_map(flow, shot.size)).astype(np.float32)
            error = np.abs(warped - shot.frame(t)).mean(axis=2)
            disc_errors.append(error[disc].mean())
            frame_errors.append(error.mean())
    return {"disc": float(np.mean(disc_errors)), "frame": float(np.mean(frame_errors)), "db": float(np.mean(disc_db))}


def test_a_fast_object_is_carried_closer_by_choosing_between_direct_and_chained_flows(monkeypatch):
    shot = fast_disc()
    ours = carried(shot)
    monkeypatch.setattr(propagate_sides, "CHAIN_MARGIN", np.inf)  # the direct flow everywhere, as before
    direct = carried(shot)
    # Measured: disc 31 against 62 grey levels, whole frame 3.2 against 4.5, style on the disc 51.1 against 50.5 dB.
    assert ours["disc"] < 0.7 * direct["disc"]
    assert ours["frame"] < direct["frame"]
    assert ours["db"] > direct["db"]


def test_the_chains_reach_each_keyframe_from_every_frame_of_the_gap():
    shot = fast_disc()
    prev = Keyframe(0, shot.frame(0), {"color": shot.frame(0)})
    nxt = Keyframe(GAP, shot.frame(GAP), {"color": shot.frame(GAP)})
    flows = Propagator(PropagateParams()).prepare_gap(prev, nxt, (shot.frame(t) for t in range(1, GAP)))
    assert flows["to_prev"].shape[0] == flows["to_next"].shape[0] == GAP - 1
    # The chain from frame t to a keyframe carries the background's pan (content moves 2 px left a frame): t frames
    # back, GAP - t ahead, in the chain's pixels.
    scale = flows["to_prev"].shape[2] / shot.size[0]
    for t in (1, 6, 11):
        back, ahead = flows["to_prev"][t - 1], flows["to_next"][t - 1]
        assert np.median(back[..., 0]) == pytest.approx(2.0 * t * scale, abs=0.35 + 0.05 * t)
        assert np.median(ahead[..., 0]) == pytest.approx(-2.0 * (GAP - t) * scale, abs=0.35 + 0.05 * (GAP - t))
