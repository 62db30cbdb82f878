"""Property-based tests of weights files built to hurt: a valid digest around a hostile model config or metadata.

Whatever the config and metadata strings hold (not a JSON object, nested thousands deep, absurd sizes, wrong
types, NaN and Infinity, unknown keys), `Poker.load` either gives a model within the config's bounds that
pokes an image, or one UserError line naming the file; within seconds and without a large allocation.
"""
import json
import time

import numpy as np
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from app_support import TINY, hostile_checkpoint
from fuzz_support import assert_one_line, fuzz
from poke2video.gru_config import DISCRIMINATOR_BOUNDS
from poke2video.errors import UserError
from poke2video.poker import Poker

VALUES = (st.integers(-2, 70) | st.sampled_from([10**9, 2**31, 2**63, 10**30, -10**9, 1024, 4096])
          | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=4) | st.none() | st.booleans()
          | st.lists(st.integers(-1, 5000), max_size=12) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
FIELDS = sorted(TINY.to_dict()) + [f"discriminator.{name}" for name in DISCRIMINATOR_BOUNDS] + ["unknown"]
NOT_OBJECTS = ["[]", "1", '"x"', "null", "{", "NaN", "[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000,
               '{"a": ' + "[" * 900 + "]" * 900 + "}"]


@st.composite
def model_configs(draw) -> str:
    """The tiny model's config with 1-3 fields set to anything, or a string that is no config at all."""
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return draw(st.sampled_from(NOT_OBJECTS))
    config = TINY.to_dict()
    if kind <= 3:                                # sizes the tensors do not show: the model loads or not by bounds
        huge = st.sampled_from([2**20, 10**9, 10**30])
        frames, side = (huge, huge) if draw(st.integers(0, 3)) == 0 else (st.integers(-2, 70), st.integers(-1, 40))
        config.update(frames=draw(frames), resolution=4 * draw(side))
        return json.dumps(config)
    for _ in range(draw(st.integers(1, 3))):
        name, value = draw(st.sampled_from(FIELDS)), draw(VALUES)
        if name.startswith("discriminator.") and isinstance(config["discriminator"], dict):
            config["discriminator"][name.split(".", 1)[1]] = value
        elif not name.startswith("discriminator."):
            config[name] = value
    return json.dumps(config)                    # NaN and Infinity as Python's json writes (and reads) them


@st.composite
def metadata_texts(draw) -> str:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.sampled_from(NOT_OBJECTS))
    if kind <= 3:
        return "{}"
    keys = draw(st.lists(st.sampled_from(["step", "name", "impulse_scale", "train"]), max_size=3, unique=True))
    return json.dumps({key: draw(VALUES) for key in keys})


@pytest.mark.slow
@fuzz(80)
@given(config=model_configs(), metadata=metadata_texts())
@example(config=json.dumps({**TINY.to_dict(), "frames": 10**9}), metadata="{}")       # was: a poke never ending
@example(config=json.dumps({**TINY.to_dict(), "stem_channels": 4096, "bottleneck_channels": 4096}),
         metadata="{}")                                                               # was: GiB before the mismatch
@example(config="[" * 5000 + "]" * 5000, metadata="{}")                               # was: RecursionError
@example(config=json.dumps(TINY.to_dict()), metadata="[1, 2]")                        # was: TypeError in Poker
@example(config=json.dumps(TINY.to_dict()), metadata='{"step": "x", "name": 5}')
def test_any_weights_file_loads_within_bounds_or_is_one_line(tmp_path_factory, config, metadata):
    path = hostile_checkpoint(tmp_path_factory.getbasetemp() / "fuzz.safetensors", config, metadata)
    started = time.monotonic()
    try:
        poker = Poker.load(path, trace=False)
        video = poker.animate(np.zeros((8, 8, 3), np.uint8), (2, 2), (5, 5))
    except UserError as exc:
        event("refused")
        assert_one_line(str(exc))
        assert str(path) in str(exc) or "impulse_scale" in str(exc), str(exc)
        assert len(str(exc)) < 600, str(exc)
        return
    finally:
        assert time.monotonic() - started < 30
    event("loaded and poked")
    cfg = poker.model.cfg
    assert 1 <= cfg.frames <= 64 and 8 <= cfg.resolution <= 1024
    assert video.shape == (cfg.frames, 8, 8, 3) and video.dtype == np.uint8
