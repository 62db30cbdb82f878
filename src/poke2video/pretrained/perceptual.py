"""Pretrained perceptual networks without torchvision: VGG16/VGG19 and AlexNet features, and LPIPS.

The feature networks use torchvision's module layout, so their state-dict keys (`features.N.weight`,
`features.N.bias`) match torchvision's published files and those load unchanged (other keys such as
`classifier.*` are ignored). LPIPS adds the lpips package's v0.1 linear heads (`lin0.model.1.weight`
... one 1x1 convolution per tapped layer).

Their files are the ones torchvision and lpips publish, found by `files.resolve_weights`. Training loads
VGG19 for the paper's perceptual loss (`load_vgg19`); evaluation loads LPIPS (`load_lpips`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from poke2video.pretrained.files import WeightFile, load_matching, load_weight_file

_TORCHVISION = "https://download.pytorch.org/models/"
_LPIPS_HEADS = "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/"
VGG19_WEIGHTS = WeightFile("vgg19-dcbb9e9d.pth", _TORCHVISION + "vgg19-dcbb9e9d.pth", "--vgg-weights")
VGG16_WEIGHTS = WeightFile("vgg16-397923af.pth", _TORCHVISION + "vgg16-397923af.pth", "--vgg16-weights")
ALEXNET_WEIGHTS = WeightFile("alexnet-owt-7be5be79.pth", _TORCHVISION + "alexnet-owt-7be5be79.pth", "--alexnet-weights")
LPIPS_VGG_HEADS = WeightFile("lpips_v0.1_vgg.pth", _LPIPS_HEADS + "vgg.pth", "--lpips-vgg-heads")
LPIPS_ALEX_HEADS = WeightFile("lpips_v0.1_alex.pth", _LPIPS_HEADS + "alex.pth", "--lpips-alex-heads")


# torchvision's VGG configurations "D" (VGG16) and "E" (VGG19): conv channels, "M" = 2x2 max pool.
VGG_LAYOUTS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)  # LPIPS's own input scaling for [-1, 1] images
LPIPS_SCALE = (0.458, 0.448, 0.450)
VGG19_LOSS_TAPS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")  # the paper's perceptual loss
LPIPS_VGG_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LPIPS_ALEX_TAPS = ("relu1", "relu2", "relu3", "relu4", "relu5")


def vgg_layers(layout: list) -> tuple[list[nn.Module], dict[str, int]]:
    """torchvision's `features` modules for a VGG layout, and the index of each named ReLU."""
    layers: list[nn.Module] = []
    relu_index: dict[str, int] = {}
    in_channels, block, conv = 3, 1, 0
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            block, conv = block + 1, 0
            continue
        conv += 1
        layers += [nn.Conv2d(in_channels, item, 3, padding=1), nn.ReLU()]
        relu_index[f"relu{block}_{conv}"] = len(layers) - 1
        in_channels = item
    return layers, relu_index


def alexnet_layers() -> tuple[list[nn.Module], dict[str, int]]:
    """torchvision's AlexNet `features` modules and the index of each ReLU (relu1..relu5)."""
    layers = [
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
    ]  # fmt: skip
    relu_index = {f"relu{k + 1}": index for k, index in enumerate((1, 4, 7, 9, 11))}
    return layers, relu_index


class TappedFeatures(nn.Module):
    """A `features` stack returning the activations at named ReLUs for images in [-1, 1].

    forward: [N, 3, H, W] in [-1, 1] -> list of [N, C_k, H_k, W_k], one per tap, in tap order.
    Inputs are normalised inside: (x - shift) / scale per channel.
    """

    def __init__(self, layers, relu_index, taps, shift, scale):
        super().__init__()
        self.features = nn.Sequential(*layers)
        self.tap_indices = [relu_index[name] for name in taps]
        self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.shift) / self.scale
        tapped = []
        for index, layer in enumerate(self.features[: self.tap_indices[-1] + 1]):
            x = layer(x)
            if index in self.tap_indices:
                tapped.append(x)
        return tapped


def vgg19_loss_features() -> TappedFeatures:
    """Untrained VGG19 tapped at relu1_2, relu2_2, relu3_2, relu4_2, relu5_2, ImageNet normalisation."""
    layers, relu_index = vgg_layers(VGG_LAYOUTS["vgg19"])
    shift = tuple(2 * m - 1 for m in IMAGENET_MEAN)  # ImageNet mean/std rewritten for [-1, 1] inputs
    scale = tuple(2 * s for s in IMAGENET_STD)
    return TappedFeatures(layers, relu_index, VGG19_LOSS_TAPS, shift, scale)


def load_vgg19(path: str | Path | None = None) -> TappedFeatures:
    """Frozen VGG19 features for the perceptual loss from torchvision's vgg19-dcbb9e9d.pth."""
    network = vgg19_loss_features()
    load_matching(network, load_weight_file(VGG19_WEIGHTS, path), VGG19_WEIGHTS)
    return network


class _LinearHead(nn.Module):
    """One LPIPS head: a bias-free 1x1 convolution to one channel, at key `model.1.weight`."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))  # 0: dropout in training


class LPIPSHeads(nn.Module):
    def __init__(self, channels: list[int]):
        super().__init__()
        for k, width in enumerate(channels):
            self.add_module(f"lin{k}", _LinearHead(width))

    def forward(self, k: int, squared_difference: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"lin{k}").model(squared_difference)


@dataclass(frozen=True)
class LPIPSVariant:
    backbone: WeightFile
    heads: WeightFile
    channels: tuple[int, ...]


LPIPS_VARIANTS = {
    "vgg": LPIPSVariant(VGG16_WEIGHTS, LPIPS_VGG_HEADS, (64, 128, 256, 512, 512)),
    "alex": LPIPSVariant(ALEXNET_WEIGHTS, LPIPS_ALEX_HEADS, (64, 192, 384, 256, 256)),
}


class LPIPS(nn.Module):
    """Learned perceptual distance: forward(a, b) with [N, 3, H, W] in [-1, 1] -> [N] distances."""

    def __init__(self, variant: str):
        super().__init__()
        if variant == "vgg":
            layers, relu_index = vgg_layers(VGG_LAYOUTS["vgg16"])
            taps = LPIPS_VGG_TAPS
        else:
            layers, relu_index = alexnet_layers()
            taps = LPIPS_ALEX_TAPS
        self.backbone = TappedFeatures(layers, relu_index, taps, LPIPS_SHIFT, LPIPS_SCALE)
        self.heads = LPIPSHeads(list(LPIPS_VARIANTS[variant].channels))

    def forward(self, images_a: torch.Tensor, images_b: torch.Tensor) -> torch.Tensor:
        features = self.backbone(torch.cat([images_a, images_b]))  # each [2N, C, h, w]
        distance = torch.zeros(len(images_a), device=images_a.device)
        for k, both in enumerate(features):
            unit = both / (both.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)  # unit length per pixel
            feature_a, feature_b = unit.chunk(2)
            distance = distance + self.heads(k, (feature_a - feature_b) ** 2).mean(dim=(1, 2, 3))
        return distance


def load_lpips(variant: str = "vgg", backbone_path: str | Path | None = None, heads_path: str | Path | None = None) -> LPIPS:
    """Frozen LPIPS ("vgg" or "alex"): torchvision backbone file plus the lpips v0.1 head file."""
    if variant not in LPIPS_VARIANTS:
        raise ValueError(f"unknown LPIPS variant {variant!r}; use one of {sorted(LPIPS_VARIANTS)}")
    files = LPIPS_VARIANTS[variant]
    model = LPIPS(variant)
    load_matching(model.backbone, load_weight_file(files.backbone, backbone_path), files.backbone)
    load_matching(model.heads, load_weight_file(files.heads, heads_path), files.heads)
    return model


def _uint8_to_model(video: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float32 [T, 3, H, W] in [-1, 1]."""
    frames = torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2).float()
    return frames / 127.5 - 1.0


def lpips_distance(video_a: np.ndarray, video_b: np.ndarray, model: LPIPS, batch: int = 16) -> float:
    """Frame-averaged LPIPS between two uint8 videos [T, H, W, 3] of equal shape."""
    video_a, video_b = np.asarray(video_a), np.asarray(video_b)
    if video_a.shape != video_b.shape or video_a.dtype != np.uint8 or video_a.ndim != 4:
        raise ValueError(f"need two uint8 [T, H, W, 3] videos of one shape, got {video_a.shape} and {video_b.shape}")
    device = next(model.parameters()).device
    distances = []
    with torch.inference_mode():
        for start in range(0, len(video_a), batch):
            chunk_a = _uint8_to_model(video_a[start : start + batch]).to(device)
            chunk_b = _uint8_to_model(video_b[start : start + batch]).to(device)
            distances.append(model(chunk_a, chunk_b))
    return float(torch.cat(distances).mean())
