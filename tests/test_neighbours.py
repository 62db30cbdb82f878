"""Appendix B.3 nearest neighbours: distances with known answers, a frame finds itself, the script."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval_support import checkpoint, sim  # noqa: F401 (fixtures)
from poke2video.errors import UserError
from poke2video.evaluate.neighbours import nearest, object_embeddings, source_frames
from poke2video.poker import Poker

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "nearest_neighbours.py"


def test_nearest_by_cosine_and_l2():
    bank = np.array([[1.0, 0.0], [0.0, 1.0], [10.0, 1.0], [-1.0, 0.0]])
    indices, distances = nearest(np.array([[2.0, -0.1]]), bank, k=2, metric="cosine")
    assert indices.tolist() == [[0, 2]] and distances[0, 0] == pytest.approx(1 - 2 / np.hypot(2, 0.1))
    indices, distances = nearest(np.array([[2.0, -0.1]]), bank, k=3, metric="l2")
    assert indices.tolist() == [[0, 1, 3]] and distances[0, 0] == pytest.approx(np.hypot(1, 0.1))
    assert nearest(bank[:1], bank, k=10)[0].shape == (1, 4)   # k capped at the bank's size
    with pytest.raises(UserError, match="--metric"):
        nearest(bank, bank, 1, metric="manhattan")


def test_a_training_frame_finds_itself(sim, checkpoint):
    model = Poker.load(checkpoint).model
    frames, clips = source_frames(sim, "train")
    assert frames.shape == (24, 32, 32, 3) and len(clips) == 24
    bank = object_embeddings(model, frames, batch=7)
    assert bank.shape == (24, model.cfg.bottleneck_channels) and np.isfinite(bank).all()
    indices, distances = nearest(object_embeddings(model, frames[[3, 11]]), bank, k=3)
    assert indices[:, 0].tolist() == [3, 11] and np.allclose(distances[:, 0], 0.0, atol=1e-5)


def test_script_writes_a_sheet_and_refuses_bad_input(sim, checkpoint, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("nearest_neighbours", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    common = ["--checkpoint", str(checkpoint), "--data", str(sim.root), "--k", "3"]
    assert script.main(common + ["--query-split", "test_unseen", "--queries", "2", "--out", str(tmp_path / "a.png")]) == 0
    Image.fromarray(np.asarray(sim.frames(0)[0])).resize((50, 40)).save(tmp_path / "q.png")
    assert script.main(common + ["--image", str(tmp_path / "q.png"), "--out", str(tmp_path / "b.png")]) == 0
    for name in ("a.png", "b.png"):
        with Image.open(tmp_path / name) as sheet:
            assert sheet.format == "PNG" and sheet.size[0] > 4 * 96
    assert script.main(common + ["--out", str(tmp_path / "c.png")]) == 2
    assert "--query-split" in capsys.readouterr().err and not (tmp_path / "c.png").exists()
