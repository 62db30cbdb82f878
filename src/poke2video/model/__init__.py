"""The generator, its discriminators and its weights file."""
from poke2video.model.poke_model import PokeModel, count_parameters
from poke2video.model.weights import build_model, load_model, save_model

__all__ = ["PokeModel", "count_parameters", "build_model", "load_model", "save_model"]
