"""Offline data: MVSEC/bag conversion to tensors files, splits, the training dataset and the
synthetic stereo generator."""
