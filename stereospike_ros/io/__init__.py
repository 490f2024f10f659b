"""Bytes and files -> events and back: the event type, message codecs, bags, MVSEC HDF5,
calibration, tensors files and the atomic writer. Imports neither rclpy nor torch."""
