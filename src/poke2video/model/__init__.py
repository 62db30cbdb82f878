"""The generator, its discriminators and its weights file."""
from poke2video.model.poke_model import PokeModel, count_parameters
from poke2video.model.weights import load_model, save_model

__all__ = ["PokeModel", "count_parameters", "load_model", "save_model"]
