"""The model families and their configs, named once: `unet` (the flow UNet, the default) and `gru` (the paper's).

A family's name is `model.architecture` in a preset and `family` in a weights header; the config classes
carry it as `family`, and every layer picks its family's code by that name (model/weights.py, poker.py,
train/loop.py). Configs written before each family had its own (weights format 1 and 2, run config.json
without `config_version`) hold one flat section with every field of both: `own_section` keeps a family's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

from poke2video.config import from_dict, retired_options
from poke2video.errors import UserError
from poke2video.flow_config import FlowModelConfig, FlowTrainConfig
from poke2video.gru_config import GRUModelConfig, GRUTrainConfig

ModelConfig = Union[FlowModelConfig, GRUModelConfig]


@dataclass(frozen=True)
class Family:
    name: str
    model_config: type
    train_config: type


FAMILIES = {"unet": Family("unet", FlowModelConfig, FlowTrainConfig),
            "gru": Family("gru", GRUModelConfig, GRUTrainConfig)}
DEFAULT_FAMILY = "gru"    # a model section without `architecture` (paper-64, paper-128) is the paper's model


def family_named(name: Any) -> Family:
    """The family `name` stands for; else a UserError naming the option."""
    if not isinstance(name, str) or name not in FAMILIES:
        raise UserError(f"model.architecture must be {' or '.join(sorted(FAMILIES))}, got {name!r}")
    return FAMILIES[name]


def model_config_from_dict(family: str, data: dict[str, Any] | None) -> ModelConfig:
    """`family`'s model config from its own fields, validated (unknown keys and bad values are UserErrors)."""
    cfg = from_dict(family_named(family).model_config, data)
    cfg.validate()
    return cfg


def _option_names(cls: type) -> set[str]:
    """The keys a section of `cls` may hold: its fields and its retired keys (config.RETIRED)."""
    return {f.name for f in dataclasses.fields(cls)} | set(retired_options(cls)[1])


def own_section(family: Family, kind: str, flat: dict[str, Any]) -> dict[str, Any]:
    """A flat `model` or `train` section (`kind`) of the old layout with the keys that belong to other
    families (and `architecture`) dropped; keys no family knows stay, to be refused as unknown."""
    own = family.model_config if kind == "model" else family.train_config
    others = {"architecture"}.union(*(_option_names(f.model_config if kind == "model" else f.train_config)
                                      for f in FAMILIES.values()))
    dropped = others - _option_names(own)
    return {key: value for key, value in flat.items() if key not in dropped}


def model_config_from_flat(data: dict[str, Any]) -> ModelConfig:
    """The model config of an old flat section: its `architecture` (gru when absent) picks the family."""
    family = family_named(data.get("architecture", DEFAULT_FAMILY))
    return model_config_from_dict(family.name, own_section(family, "model", data))
