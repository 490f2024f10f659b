"""Count tensors -> depth: the StereoSpike network, checkpoints, inference, loss, metrics, the one
depth-validity rule and the stereo geometry (depth -> disparity, points)."""

#: Inference engines of ``inference.Predictor`` and of the node's ``backend`` parameter (kept here,
#: free of torch imports, so the node can declare its parameters before loading torch).
INFERENCE_BACKENDS = ('torch', 'onnxruntime')
