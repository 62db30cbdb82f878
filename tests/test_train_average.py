"""The moving average of the generator's weights (train.ema)."""
import pytest
import torch

from poke2video.config import TrainConfig
from poke2video.errors import UserError
from poke2video.train.average import WeightAverage


def test_average_follows_early_and_then_averages_over_about_one_over_one_minus_decay_steps():
    model = torch.nn.Linear(1, 1, bias=False)
    average = WeightAverage(model, decay=0.99)
    assert average.rate(1) == pytest.approx(1 - 2 / 11) and average.rate(10_000) == pytest.approx(0.01)
    expected = 0.0
    with torch.no_grad():
        model.weight.fill_(0.0)
        average.model.weight.fill_(0.0)
        for step in range(1, 2001):
            model.weight.fill_(float(step % 2))           # weights that jump between 0 and 1 every step
            average.update(model, step)
            expected += average.rate(step) * (step % 2 - expected)
    assert average.model.weight.item() == pytest.approx(expected, rel=1e-5)   # float32 vs float64
    assert 0.45 < average.model.weight.item() < 0.55      # the average sits between the two
    assert not average.model.weight.requires_grad and not average.model.training


def test_decay_must_be_below_one():
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(UserError, match="train.ema"):
            TrainConfig(ema=bad).validate()
    TrainConfig(ema=0.995).validate()
