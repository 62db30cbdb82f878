"""The optical flow network of `prepare --flow net`: generated training scenes, the network, its training, the estimator."""
