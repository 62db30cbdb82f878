"""A preset: one model family's model config and training config (a training recipe).

Read from `poke2video/presets/<name>.yaml`, a YAML file, or a run's config.json. The `model:` section's
`architecture` (gru when absent) names the family; both sections then hold that family's options only, and
an option of another family is as unknown as a typo. `Preset.to_dict` writes the same layout back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml

from poke2video.config import TrainConfig, from_dict, load_preset_yaml
from poke2video.errors import UserError
from poke2video.families import DEFAULT_FAMILY, ModelConfig, family_named, own_section


class Preset(NamedTuple):
    """A named training recipe: the model of one family and how to train it."""

    model: ModelConfig
    train: TrainConfig

    @property
    def family(self) -> str:
        return self.model.family

    def to_dict(self) -> dict[str, Any]:
        """The preset's YAML layout: `architecture` first in the model section."""
        return {"model": {"architecture": self.family, **self.model.to_dict()}, "train": self.train.to_dict()}


def load_preset(name_or_path: str) -> Preset:
    """A preset by name (`presets/<name>.yaml`) or from a YAML file path, validated; unknown keys are errors."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"preset file {path} does not exist")
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    else:
        data = load_preset_yaml(name_or_path)
    if not isinstance(data, dict) or "model" not in data:
        raise UserError(f"preset {name_or_path}: needs a `model:` section")
    preset = preset_from_dict(data)
    preset.model.validate()
    preset.train.validate()
    return preset


def preset_from_dict(data: dict[str, Any], flat: bool = False) -> Preset:
    """A Preset from its `model` and `train` sections (a preset's YAML, or a run's config.json). `flat`: the
    layout written before each family had configs of its own, whose sections hold both families' fields."""
    unknown = sorted(set(data) - {"model", "train"})
    if unknown:
        raise UserError(f"unknown Preset option(s): {', '.join(map(str, unknown))}")
    sections = {"model": data.get("model"), "train": data.get("train", {})}
    for name, section in sections.items():
        if not isinstance(section, dict):
            raise UserError(f"Preset.{name} must be a mapping, got {section!r}")
    family = family_named(sections["model"].get("architecture", DEFAULT_FAMILY))
    if flat:
        sections = {name: own_section(family, name, section) for name, section in sections.items()}
    model = {key: value for key, value in sections["model"].items() if key != "architecture"}
    train = from_dict(family.train_config, sections["train"])
    train.betas = tuple(train.betas)
    return Preset(from_dict(family.model_config, model), train)


def model_config_for(preset: str) -> ModelConfig:
    """The model config of a preset (by name or YAML path), validated."""
    return load_preset(preset).model
