"""Appendix B.3 nearest neighbours: distances with known answers, a frame finds itself, the sheet."""
import numpy as np
import pytest
from PIL import Image

from eval_support import checkpoint, sim  # noqa: F401 (fixtures)
from poke2video.errors import UserError
from poke2video.evaluate.neighbours import nearest, nearest_neighbours_to_file, object_embeddings, source_frames
from poke2video.poker import Poker


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


def test_a_sheet_for_a_split_or_images_and_bad_input_refused(sim, checkpoint, tmp_path):
    def sheet(out, **query):
        return nearest_neighbours_to_file(str(checkpoint), str(sim.root), str(tmp_path / out), k=3, **query)

    assert sheet("a.png", query_split="test_unseen", queries=2) == tmp_path / "a.png"
    Image.fromarray(np.asarray(sim.frames(0)[0])).resize((50, 40)).save(tmp_path / "q.png")
    assert sheet("b.png", images=[str(tmp_path / "q.png")]) == tmp_path / "b.png"
    for name in ("a.png", "b.png"):
        with Image.open(tmp_path / name) as written:
            assert written.format == "PNG" and written.size[0] > 4 * 96
    with pytest.raises(UserError, match="--query-split"):
        sheet("c.png")
    assert not (tmp_path / "c.png").exists()
