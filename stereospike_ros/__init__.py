"""stereospike: dense metric depth from a stereo pair of event cameras with a spiking network.

Data flow, one module per step: ``wire`` (message bytes) -> ``events`` -> ``windows`` /
``stream`` (time windows) -> ``encoding`` (count tensors) -> ``model`` -> depth -> ``ros_images``.
"""

__version__ = '0.1.0'
