"""Count tensors -> depth: the StereoSpike network, checkpoints, inference, loss, metrics, the one
depth-validity rule and the stereo geometry (depth -> disparity, points)."""
