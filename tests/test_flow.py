"""Optical flow convention: channel 0 = x (right), 1 = y (down), pixels, frame a -> frame b."""
import numpy as np
import pytest

from conftest import textured_background
from poke2video.data.flow import estimate_flow, get_flow_estimator
from poke2video.errors import UserError


@pytest.mark.parametrize("shift", [(3, -2), (-1, 4)])
def test_global_shift_gives_that_flow(shift):
    big = textured_background(96, 96, seed=3)
    dx, dy = shift
    frame_a = big[16:80, 16:80]
    frame_b = big[16 - dy:80 - dy, 16 - dx:80 - dx]  # content moves by (dx, dy)
    flow = estimate_flow(frame_a, frame_b)
    assert flow.shape == (2, 64, 64) and flow.dtype == np.float32
    inner = flow[:, 8:-8, 8:-8]
    assert np.median(inner[0]) == pytest.approx(dx, abs=0.2)
    assert np.median(inner[1]) == pytest.approx(dy, abs=0.2)


def test_unknown_method_is_a_user_error():
    with pytest.raises(UserError, match="unknown flow method 'raft'"):
        get_flow_estimator("raft")
