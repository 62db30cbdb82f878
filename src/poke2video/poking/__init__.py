"""The parts behind `Poker`: the image and the poke in the image's pixels, and one adapter per model family."""
