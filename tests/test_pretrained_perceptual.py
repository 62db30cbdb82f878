import urllib.error

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from poke2video.errors import WeightsUnavailable
from poke2video.pretrained import files, perceptual

# Indices of the convolutions in torchvision's `features` stacks (facts of the published files).
VGG19_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
VGG16_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
ALEXNET_CONVS = [0, 3, 6, 8, 10]


def conv_keys(indices):
    return {f"features.{i}.{kind}" for i in indices for kind in ("weight", "bias")}


def save_weights(path, state):
    """Save a state dict as torchvision does, with a classifier key the loaders must ignore."""
    torch.save({**state, "classifier.0.weight": torch.zeros(4, 2)}, path)
    return path


def random_heads(channels, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=generator) for k, c in enumerate(channels)}


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Empty hub cache, and downloads fail the way they do offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


def test_state_dict_keys_match_torchvision_layouts():
    assert set(perceptual.vgg19_loss_features().state_dict()) == conv_keys(VGG19_CONVS)
    assert set(perceptual.LPIPS("vgg").backbone.state_dict()) == conv_keys(VGG16_CONVS)
    assert set(perceptual.LPIPS("alex").backbone.state_dict()) == conv_keys(ALEXNET_CONVS)
    assert set(perceptual.LPIPS("alex").heads.state_dict()) == {f"lin{k}.model.1.weight" for k in range(5)}


def test_load_vgg19_from_path_gives_loss_features(tmp_path):
    torch.manual_seed(0)
    source = perceptual.vgg19_loss_features()
    path = save_weights(tmp_path / "vgg19.pth", source.state_dict())
    network = perceptual.load_vgg19(path)
    for key, value in source.state_dict().items():
        assert torch.equal(network.state_dict()[key], value)
    images = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_()
    features = network(images)
    assert [f.shape[1:] for f in features] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    imagenet = ((images + 1) / 2 - torch.tensor(perceptual.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        perceptual.IMAGENET_STD
    ).view(1, 3, 1, 1)
    conv1, conv2 = network.features[0], network.features[2]
    torch.testing.assert_close(features[0], F.relu(conv2(F.relu(conv1(imagenet)))), rtol=1e-4, atol=1e-5)
    features[-1].sum().backward()
    assert images.grad is not None and all(not p.requires_grad for p in network.parameters())


def test_load_vgg19_finds_the_hub_cache_file(tmp_path):
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    save_weights(cache / "vgg19-dcbb9e9d.pth", perceptual.vgg19_loss_features().state_dict())
    assert len(perceptual.load_vgg19()(torch.zeros(1, 3, 16, 16))) == 5


def test_download_lands_in_the_hub_cache(tmp_path, monkeypatch):
    heads = random_heads(perceptual.LPIPS_VARIANTS["alex"].channels)
    fetched = []

    def online(url, dst, *args, **kwargs):
        fetched.append(url)
        torch.save(heads, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", online)
    path = files.resolve_weights(perceptual.LPIPS_ALEX_HEADS)
    assert fetched == [perceptual.LPIPS_ALEX_HEADS.url]
    assert path.parent == tmp_path / "torch_home" / "hub" / "checkpoints" and path.is_file()


def test_missing_weights_name_the_option(tmp_path):
    with pytest.raises(WeightsUnavailable, match="--vgg-weights PATH"):
        perceptual.load_vgg19()
    with pytest.raises(WeightsUnavailable, match="--vgg-weights: no such file"):
        perceptual.load_vgg19(tmp_path / "absent.pth")
    with pytest.raises(WeightsUnavailable, match="--lpips-alex-heads PATH"):
        perceptual.load_lpips("alex", backbone_path=save_weights(tmp_path / "a.pth", perceptual.LPIPS("alex").backbone.state_dict()))


def test_corrupt_or_mismatched_files_are_rejected(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailable, match="not a readable PyTorch weight file"):
        perceptual.load_vgg19(corrupt)
    alexnet = save_weights(tmp_path / "alexnet.pth", perceptual.LPIPS("alex").backbone.state_dict())
    with pytest.raises(WeightsUnavailable, match="missing features.2.weight.*wrong shape features.0.weight"):
        perceptual.load_vgg19(alexnet)
    wrong_heads = save_weights(tmp_path / "heads.pth", random_heads([64, 192, 384, 256, 128]))
    with pytest.raises(WeightsUnavailable, match="wrong shape lin4.model.1.weight"):
        perceptual.load_lpips("alex", backbone_path=alexnet, heads_path=wrong_heads)


def lpips_by_hand(model, a, b):
    """LPIPS recomputed from the tapped features with F.normalize and the head weights as dot products."""
    total = torch.zeros(len(a))
    for k, (fa, fb) in enumerate(zip(model.backbone(a), model.backbone(b))):
        weight = getattr(model.heads, f"lin{k}").model[1].weight.view(1, -1, 1, 1)
        squared = (F.normalize(fa, dim=1, eps=1e-10) - F.normalize(fb, dim=1, eps=1e-10)) ** 2
        total += (squared * weight).sum(dim=1).mean(dim=(1, 2))
    return total


@pytest.mark.parametrize("variant", ["alex", "vgg"])
def test_lpips_loads_and_measures(tmp_path, variant):
    torch.manual_seed(1)
    template = perceptual.LPIPS(variant)
    backbone = save_weights(tmp_path / "backbone.pth", template.backbone.state_dict())
    heads = save_weights(tmp_path / "heads.pth", random_heads(perceptual.LPIPS_VARIANTS[variant].channels))
    model = perceptual.load_lpips(variant, backbone_path=backbone, heads_path=heads)
    rng = np.random.default_rng(0)
    video_a = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    video_b = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    assert perceptual.lpips_distance(video_a, video_a, model) == pytest.approx(0.0, abs=1e-6)
    distance = perceptual.lpips_distance(video_a, video_b, model, batch=2)
    assert distance > 0 and distance == pytest.approx(perceptual.lpips_distance(video_b, video_a, model), rel=1e-5)
    as_model = [torch.from_numpy(v).permute(0, 3, 1, 2).float() / 127.5 - 1 for v in (video_a, video_b)]
    with torch.no_grad():
        expected = lpips_by_hand(model, *as_model).mean().item()
    assert distance == pytest.approx(expected, rel=1e-4)
