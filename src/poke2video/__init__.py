"""poke2video: poke one pixel of a still image and get a video of how the object responds.

    from poke2video import Poker
    poker = Poker.load()            # the bundled default model, or a path to model.safetensors
    video = poker.animate(image, source=(30, 22), target=(36, 20))   # uint8 [T, H, W, 3]
"""
__version__ = "0.1.0"
__all__ = ["Poker", "__version__"]


def __getattr__(name):  # import torch only when the model is actually needed
    if name == "Poker":
        from poke2video.poker import Poker

        return Poker
    raise AttributeError(f"module 'poke2video' has no attribute {name!r}")
