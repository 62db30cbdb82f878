"""PokeSim with several pokes and pins: default stores keep their bytes, pins hold their segment and the path
above it, every poke and pin is stored, and the command line refuses counts out of range."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from poke2video.cli import main
from poke2video.data.store import Store
from poke2video.sim.bodies import ancestors, sample_body, SPECIES
from poke2video.sim.generate import simulate_dataset
from poke2video.sim.physics import PhysicsConfig, Pin, Poke, poke_force, simulate
from poke2video.sim.scene import PIN_COLUMNS, POKE_COLUMNS

FIXTURE = Path(__file__).parent / "fixtures" / "pokesim_default_hashes.json"
POKE = {name: i for i, name in enumerate(POKE_COLUMNS)}
PIN = {name: i for i, name in enumerate(PIN_COLUMNS)}


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_store_made_with_the_defaults_has_the_bytes_it_had_before_pokes_and_pins(tmp_path):
    """The fixture holds the sha256 of every file of this store as the simulator wrote it before
    --max-pokes and --max-pins existed (same seed and options, default counts)."""
    simulate_dataset(tmp_path / "store", clips=12, resolution=32, seed=5, chunk_clips=5)
    recorded = json.loads(FIXTURE.read_text())
    assert file_hashes(tmp_path / "store") == recorded
    explicit = tmp_path / "explicit"
    simulate_dataset(explicit, clips=12, resolution=32, seed=5, chunk_clips=5, max_pokes=1, max_pins=0)
    assert file_hashes(explicit) == recorded


@pytest.fixture(scope="module")
def several(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "several"
    simulate_dataset(out, clips=40, resolution=64, seed=11, chunk_clips=20, max_pokes=3, max_pins=2)
    return Store.open(out, verify_hashes=True)


def clips_of(store):
    for video in range(len(store.videos)):
        for row in range(len(store.starts(video))):
            yield video, row


def test_every_poke_and_pin_is_stored_and_the_first_poke_is_gt_poke(several):
    counts, pin_counts = [], []
    for video, row in clips_of(several):
        pokes = np.asarray(several.array(video, "gt_pokes")[row])
        pins = np.asarray(several.array(video, "gt_pins")[row])
        assert pokes.shape == (3, len(POKE_COLUMNS)) and pins.shape == (2, len(PIN_COLUMNS))
        np.testing.assert_array_equal(pokes[0], several.array(video, "gt_poke")[row])
        used = pokes[pokes[:, POKE["segment"]] >= 0]
        if used[0, POKE["is_background"]]:
            assert len(used) == 1 and (pins[:, PIN["segment"]] == -1).all()
            continue
        segments = used[:, POKE["segment"]]
        assert len(set(segments)) == len(segments)           # different segments
        counts.append(len(used))
        pin_counts.append(int((pins[:, PIN["segment"]] >= 0).sum()))
    assert set(counts) == {1, 2, 3} and set(pin_counts) == {0, 1, 2}
    info = several.manifest["extra"]["pokesim"]
    assert {"gt_pokes", "gt_pins"} <= set(info["arrays"]) and info["max_pokes"] == 3 and info["max_pins"] == 2


def test_a_pinned_segment_and_every_segment_above_it_never_move(several):
    held_pixels = moved_elsewhere = 0
    for video, row in clips_of(several):
        pins = np.asarray(several.array(video, "gt_pins")[row])
        pins = pins[pins[:, PIN["segment"]] >= 0]
        if not len(pins):
            continue
        parents = np.asarray(several.array(video, "gt_parents")[row])
        count = int((parents > -2).sum())
        chain = ancestors(parents[:count].astype(np.int64))
        locked = {s for pin in pins for s in np.nonzero(chain[:, int(pin[PIN["segment"]])])[0]}
        segments = np.asarray(several.array(video, "gt_segments")[row, 0]).astype(np.int64) - 1   # frame 0
        flow = np.asarray(several.array(video, "gt_flow")[row], np.float32)                       # [T+1, 2, H, W]
        speed = np.hypot(flow[:, 0], flow[:, 1]).max(axis=0)
        held = np.isin(segments, sorted(locked))
        assert speed[held].max() == 0.0
        for pin in pins:
            assert segments[int(pin[PIN["y"]]), int(pin[PIN["x"]])] == int(pin[PIN["segment"]])
        held_pixels += int(held.sum())
        moved_elsewhere += int((speed[~held & (segments >= 0)] > 0.5).sum())
    assert held_pixels > 0 and moved_elsewhere > 0


def test_no_pin_sits_on_the_path_of_a_poke(several):
    for video, row in clips_of(several):
        pokes = np.asarray(several.array(video, "gt_pokes")[row])
        pins = np.asarray(several.array(video, "gt_pins")[row])
        parents = np.asarray(several.array(video, "gt_parents")[row]).astype(np.int64)
        chain = ancestors(parents[:int((parents > -2).sum())])
        for pin in pins[pins[:, PIN["segment"]] >= 0]:
            for poke in pokes[pokes[:, POKE["segment"]] >= 0]:
                assert not chain[int(poke[POKE["segment"]]), int(pin[PIN["segment"]])]


def test_a_pin_locks_its_path_while_a_side_branch_still_turns():
    """Physics alone: a plant poked on one segment with a pin on another branch keeps the pinned path at its
    rest angles, and the poked segment still turns."""
    rng = np.random.default_rng(3)
    body = sample_body(rng, next(s for s in SPECIES if s.kind == "plant"))
    chain = ancestors(body.parent)
    leaves = [s for s in range(1, body.num_segments) if not (chain[s].sum() > 1)]
    poked, pinned = next((a, b) for a in leaves for b in leaves if a != b and not chain[a, b] and not chain[b, a])
    tip = np.array([0.8 * body.length[poked], 0.0])          # along the segment, away from its joint
    force = poke_force(body, poked, tip, np.array([1.0, 0.3]), 0.3)
    config = PhysicsConfig()
    free, _ = simulate([body], [[Poke(poked, tip, force)]], config)
    held, _ = simulate([body], [[Poke(poked, tip, force)]], config, [[Pin(pinned, np.zeros(2))]])
    path = np.nonzero(chain[:, pinned])[0]
    np.testing.assert_array_equal(held[0, :, path], np.repeat(held[0, :1, path], config.frames, axis=1))
    assert np.abs(free[0, :, path, 0] - free[0, :1, path, 0]).max() > 1e-4   # it would have moved
    assert np.abs(held[0, :, poked, 0] - held[0, 0, poked, 0]).max() > 1e-3


@pytest.mark.parametrize("args, message", [
    (["--max-pokes", "0"], "--max-pokes: must be at least 1"),
    (["--max-pokes", "9"], "--max-pokes must be between 1 and 8, got 9"),
    (["--max-pins", "9"], "--max-pins must be between 0 and 8, got 9"),
    (["--max-pins", "-1"], "--max-pins: must be 0 or more"),
    (["--max-pokes", "2", "--as-videos"], "--max-pokes and --max-pins need a store"),
    (["--frames-per-step", "2"], "--frames-per-step draws frames of plain videos; add --as-videos"),
    (["--frames-per-step", "3", "--as-videos"], "--frames-per-step must be one of 1, 2, 4, 8, got 3"),
])
def test_simulate_refuses_counts_out_of_range_in_one_line(tmp_path, capsys, args, message):
    try:
        status = main(["simulate", "--out", str(tmp_path / "out"), "--clips", "2", *args])
    except SystemExit as exc:            # argparse's own refusals exit from inside main
        status = exc.code
    assert status == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()
