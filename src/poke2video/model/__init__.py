"""The generators of both families (the flow UNet, the paper's Conv-GRU model), their parts and weights files."""
from poke2video.model.flow_unet import FlowUNet
from poke2video.model.poke_model import PokeModel, count_parameters
from poke2video.model.prediction import Prediction
from poke2video.model.weights import build_model, load_model, save_model

__all__ = ["FlowUNet", "PokeModel", "Prediction", "count_parameters", "build_model", "load_model", "save_model"]
