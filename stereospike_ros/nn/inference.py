"""Device-aware depth prediction from event count tensors (used by the ROS node and evaluate.py).

:class:`Predictor` loads a checkpoint (or takes a model), picks CUDA when available, swaps the
spiking layers for the stateless (numerically identical) pure-torch IF neurons, runs under
``torch.inference_mode`` in channels_last memory format (about 1.25x faster convolutions on a
CPU as well as on CUDA) with optional half precision on CUDA, and warms up.
``predict`` is serialised by a lock, so one worker thread (or several) may call it safely.
Backend ``'onnxruntime'`` runs the same network through ONNX Runtime instead: exported per input
size on first use and checked against torch, or an exported ``.onnx``.
"""
from __future__ import annotations

import threading
import warnings

import numpy as np
import torch

from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH
from stereospike_ros.nn import INFERENCE_BACKENDS as BACKENDS, export
from stereospike_ros.nn.checkpoint import load_checkpoint
from stereospike_ros.nn.model import ModelConfig, StereoSpike, build_model, with_stateless_neurons


def resolve_device(device: str | torch.device = 'auto') -> torch.device:
    """'auto' -> CUDA when available else CPU; other values are validated by torch."""
    if isinstance(device, str) and device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f'device {device!r} is not a torch device (auto, cpu, cuda, cuda:N, '
                         f'...)') from None
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {device!r} requested but CUDA is not available')
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f'device {device!r} requested but this machine has '
                             f'{torch.cuda.device_count()} CUDA device(s)')
    return dev


class Predictor:
    """Counts (uint16 (4,H,W) or (B,4,H,W)) -> float32 depth (H,W) / (B,H,W) in metres.

    Give a checkpoint path or a model; with neither, an untrained reference net is used (warned).
    ``backend='onnxruntime'`` also takes an exported ``.onnx`` file as checkpoint.
    """

    def __init__(self, checkpoint: str | None = None, device: str = 'auto', half: bool = False,
                 model: StereoSpike | None = None, channels_last: bool = True,
                 stateless_neurons: bool = True,
                 warmup_shape: tuple[int, int] | None = (SENSOR_HEIGHT, SENSOR_WIDTH),
                 backend: str = 'torch') -> None:
        if checkpoint is not None and model is not None:
            raise ValueError('Predictor takes a checkpoint or a model, not both')
        if backend not in BACKENDS:
            raise ValueError(f'backend {backend!r}: expected one of {", ".join(BACKENDS)}')
        self.backend = backend
        self.device = resolve_device(device)
        self.meta: dict = {}
        self.untrained = checkpoint is None and model is None
        self._lock = threading.Lock()
        self._sessions: dict = {}   # onnxruntime: (H, W) -> session
        self.onnx_max_diff_m: float | None = None
        if backend == 'onnxruntime':
            ort = export.onnxruntime_module()
            if device == 'auto' and 'CUDAExecutionProvider' not in ort.get_available_providers():
                self.device = torch.device('cpu')
        onnx_file = checkpoint is not None and str(checkpoint).lower().endswith('.onnx')
        if onnx_file:
            if backend != 'onnxruntime':
                raise ValueError(f'{checkpoint}: an ONNX model runs with backend onnxruntime')
            self._init_onnx_file(str(checkpoint))
        elif checkpoint is not None:
            model, self.meta = load_checkpoint(checkpoint, 'cpu')
        elif model is None:  # no weights given: the reference network, untrained (for demos)
            warnings.warn('Predictor without checkpoint: untrained reference network, '
                          'depth output is meaningless', stacklevel=2)
            with torch.random.fork_rng():
                torch.manual_seed(0)
                model = build_model()
        if not onnx_file:
            self._init_model(model, half, channels_last, stateless_neurons)
        if warmup_shape is not None:
            self.warmup(warmup_shape)

    def _init_model(self, model: StereoSpike, half: bool, channels_last: bool,
                    stateless_neurons: bool) -> None:
        if stateless_neurons:
            model = with_stateless_neurons(model)
        self._config: ModelConfig = model.config
        if self.backend == 'onnxruntime':  # kept on the CPU in float32: exported per input size
            if half:
                warnings.warn('half is not used by the onnxruntime backend (float32)',
                              stacklevel=3)
            self.model = model.cpu().eval()
            self.dtype, self.channels_last = torch.float32, False
            return
        self.model = model.to(self.device).eval()
        cuda = self.device.type == 'cuda'
        self.dtype = torch.float16 if (half and cuda) else torch.float32
        self.channels_last = bool(channels_last)   # faster on CPU too (bench_inference)
        if self.dtype != torch.float32:
            self.model = self.model.to(self.dtype)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def _init_onnx_file(self, path: str) -> None:
        sess = export.session(path, self.device)
        config, shape = export.model_info(sess)
        if config is None:
            raise ValueError(f'{path}: not a stereospike ONNX export (no model config in its '
                             'metadata; export it with train/export.py)')
        if len(shape) != 4 or None in shape[2:]:
            raise ValueError(f'{path}: the ONNX input {shape} has no fixed height and width')
        self.model, self._config, self.meta = None, config, {'onnx': path}
        self.dtype, self.channels_last = torch.float32, False
        self._onnx_path, self._onnx_batch = path, shape[0]
        self._sessions[shape[2:]] = sess

    @property
    def config(self) -> ModelConfig:
        """The model's :class:`ModelConfig`."""
        return self._config

    def warmup(self, shape: tuple[int, int] = (SENSOR_HEIGHT, SENSOR_WIDTH),
               runs: int = 1) -> None:
        """Run ``runs`` forward passes on zeros so first-call latency is paid up front."""
        zeros = np.zeros((1, 4) + tuple(shape), np.uint16)
        for _ in range(runs):
            self.predict(zeros)

    def _to_array(self, counts: np.ndarray) -> tuple[np.ndarray, bool]:
        """Validated float32 (B,C,H,W) counts and whether one window was given."""
        a = np.asarray(counts)
        single = a.ndim == 3
        if single:
            a = a[None]
        if a.ndim != 4 or a.shape[1] not in (2, 4):
            raise ValueError(f'counts must be (4,H,W) or (B,4,H,W), got shape {a.shape}')
        if a.shape[1] != 4 and self.config.in_channels != 2:
            raise ValueError(f'binocular model needs 4 channels, got shape {a.shape}')
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise ValueError(f'counts must be numeric, got dtype {a.dtype}')
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise ValueError('counts contain NaN or infinite values')
        if a.shape[1] == 4 and self.config.in_channels == 2:
            a = a[:, :2]  # a monocular net sees the left camera only
        return np.ascontiguousarray(a, dtype=np.float32), single

    def _session(self, height: int, width: int):
        """The ONNX Runtime session for this input size (exported and checked on first use)."""
        sess = self._sessions.get((height, width))
        if sess is not None:
            return sess
        if self.model is None:
            (h, w), = self._sessions
            raise ValueError(f'{self._onnx_path}: the ONNX model takes {h}x{w} counts, got '
                             f'{height}x{width}')
        _, sess, self.onnx_max_diff_m = export.checked_onnx(
            self.model, height, width, dynamic_batch=True, device=self.device)
        self._sessions[(height, width)] = sess
        return sess

    def predict(self, counts: np.ndarray) -> np.ndarray:
        """Depth in metres as float32 numpy, (H,W) for one window or (B,H,W) for a batch."""
        a, single = self._to_array(counts)
        if self.backend == 'onnxruntime':
            with self._lock:
                sess = self._session(*a.shape[2:])
                if self.model is None and self._onnx_batch == 1:  # a batch-1 export
                    out = np.concatenate([export.run(sess, a[i:i + 1]) for i in range(len(a))])
                else:
                    out = export.run(sess, a)
            return out[0] if single else out
        x = torch.from_numpy(a).to(self.device, non_blocking=True).to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._lock:
            out = self.model.predict(x).float().cpu().numpy()
        return out[0] if single else out
