"""Count tensors -> depth: the StereoSpike network, checkpoints, inference, loss, metrics and
the one depth-validity rule."""
