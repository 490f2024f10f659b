"""Device-aware depth prediction from event count tensors (used by the ROS node and evaluate.py).

:class:`Predictor` loads a checkpoint (or takes a model), picks CUDA when available, swaps the
spiking layers for the stateless (numerically identical) pure-torch IF neurons, runs under
``torch.inference_mode`` with optional half precision / channels_last on CUDA, and warms up.
``predict`` is serialised by a lock, so one worker thread (or several) may call it safely.
"""
from __future__ import annotations

import threading
import warnings

import numpy as np
import torch

from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH
from stereospike_ros.nn.checkpoint import load_checkpoint
from stereospike_ros.nn.model import ModelConfig, StereoSpike, build_model


def resolve_device(device: str | torch.device = 'auto') -> torch.device:
    """'auto' -> CUDA when available else CPU; other values are validated by torch."""
    if isinstance(device, str) and device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dev = torch.device(device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device {device!r} requested but CUDA is not available')
    return dev


class Predictor:
    """Counts (uint16 (4,H,W) or (B,4,H,W)) -> float32 depth (H,W) / (B,H,W) in metres.

    Give a checkpoint path or a model; with neither, an untrained reference net is used (warned).
    """

    def __init__(self, checkpoint: str | None = None, device: str = 'auto', half: bool = False,
                 model: StereoSpike | None = None, channels_last: bool = True,
                 stateless_neurons: bool = True,
                 warmup_shape: tuple[int, int] | None = (SENSOR_HEIGHT, SENSOR_WIDTH)
                 ) -> None:
        if checkpoint is not None and model is not None:
            raise ValueError('Predictor takes a checkpoint or a model, not both')
        self.device = resolve_device(device)
        self.meta: dict = {}
        self.untrained = checkpoint is None and model is None
        if checkpoint is not None:
            model, self.meta = load_checkpoint(checkpoint, 'cpu')
        elif model is None:  # no weights given: the reference network, untrained (for demos)
            warnings.warn('Predictor without checkpoint: untrained reference network, '
                          'depth output is meaningless', stacklevel=2)
            with torch.random.fork_rng():
                torch.manual_seed(0)
                model = build_model()
        if stateless_neurons and model.is_spiking \
                and model.config.neuron_backend != 'torch':
            fast = build_model(model.config, neuron_backend='torch')
            fast.load_state_dict(model.state_dict())
            model = fast
        self.model = model.to(self.device).eval()
        cuda = self.device.type == 'cuda'
        self.dtype = torch.float16 if (half and cuda) else torch.float32
        self.channels_last = bool(channels_last and cuda)
        if self.dtype != torch.float32:
            self.model = self.model.to(self.dtype)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._lock = threading.Lock()
        if warmup_shape is not None:
            self.warmup(warmup_shape)

    @property
    def config(self) -> ModelConfig:
        """The model's :class:`ModelConfig`."""
        return self.model.config

    def warmup(self, shape: tuple[int, int] = (SENSOR_HEIGHT, SENSOR_WIDTH),
               runs: int = 1) -> None:
        """Run ``runs`` forward passes on zeros so first-call latency is paid up front."""
        zeros = np.zeros((1, 4) + tuple(shape), np.uint16)
        for _ in range(runs):
            self.predict(zeros)

    def _to_tensor(self, counts: np.ndarray) -> tuple[torch.Tensor, bool]:
        a = np.asarray(counts)
        single = a.ndim == 3
        if single:
            a = a[None]
        if a.ndim != 4 or a.shape[1] not in (2, 4):
            raise ValueError(f'counts must be (4,H,W) or (B,4,H,W), got shape {a.shape}')
        if a.shape[1] != 4 and self.model.config.in_channels != 2:
            raise ValueError(f'binocular model needs 4 channels, got shape {a.shape}')
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise ValueError(f'counts must be numeric, got dtype {a.dtype}')
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise ValueError('counts contain NaN or infinite values')
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        x = x.to(self.device, non_blocking=True).to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, single

    def predict(self, counts: np.ndarray) -> np.ndarray:
        """Depth in metres as float32 numpy, (H,W) for one window or (B,H,W) for a batch."""
        x, single = self._to_tensor(counts)
        with self._lock:
            out = self.model.predict(x).float().cpu().numpy()
        return out[0] if single else out
