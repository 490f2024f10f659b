"""stereospike: dense metric depth from a stereo pair of event cameras with a spiking network.

One subpackage per stage of the data flow (docs/architecture.md), each importing only the ones
before it: ``io`` (message bytes, bags, MVSEC files -> ``Events``; calibration, tensors files,
atomic writes) -> ``windowing`` (live ``stream`` / offline ``reference`` windows -> ``encoding``,
the one rectify-and-bin -> count tensors) -> ``nn`` (model, inference -> depth; the one validity
rule, geometry, metrics) -> ``offline`` (conversion, splits, dataset, synthetic data) and ``ros``
(the depth node, its outputs, the bag player: the only subpackage that imports rclpy).
"""

__version__ = '0.1.0'
