"""Pretrained networks and their weight files: VGG19 (the paper's perceptual loss), LPIPS and I3D (evaluation)."""
