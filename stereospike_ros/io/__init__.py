"""Bytes and files -> events and back: the event type and its time-order policy, message codecs,
bags, MVSEC HDF5 and constants, calibration, tensors files and the atomic writer. Imports neither
rclpy nor torch, nor any other subpackage."""
