"""ONNX export of StereoSpike and the ONNX Runtime session that runs it (Predictor backend).

The network runs one time step with freshly reset neurons, so every IF layer is exactly the step
``spike = (v >= 1)``: the exported graph is plain Conv, GreaterOrEqual, Cast, Add and Gather
(nearest upsampling by constant indices, see :func:`nearest_indices`), with no Python and no
neuron state. Outputs are the four cumulative readouts, the finest depth map in metres first.
"""
from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from stereospike_ros.io import atomic
from stereospike_ros.io.errors import InputError
from stereospike_ros.io.events import SENSOR_HEIGHT, SENSOR_WIDTH
from stereospike_ros.nn.model import (ModelConfig, SizedNearest, StereoSpike, UpBlock,
                                      with_stateless_neurons)

if TYPE_CHECKING:  # onnxruntime is optional: imported where used
    from onnxruntime import InferenceSession

ONNX_INPUT = 'counts'
#: Graph outputs, finest first: ``depth`` is what the Predictor and the node publish.
ONNX_OUTPUTS = ('depth', 'depth2', 'depth3', 'depth4')
#: Largest |depth difference| in metres an export may show against the torch model.
PARITY_TOLERANCE_M = 1e-3
OPSET = 18
#: Event counts per pixel and channel of the random parity input (Poisson mean).
PARITY_COUNT_MEAN = 0.5
QUIET_LOGGERS = ('torch.onnx._internal.exporter._registration',)


class ExportError(InputError):
    """An export that cannot be made, does not match torch, or a missing ONNX package."""


def onnxruntime_module() -> ModuleType:
    """``import onnxruntime``, or an :class:`ExportError` that says how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ExportError('onnxruntime is not installed: pip install onnxruntime (CPU) or '
                          'onnxruntime-gpu (CUDA), or use backend torch') from exc
    return onnxruntime


def nearest_indices(n_in: int, n_out: int) -> torch.Tensor:
    """Source index of each output position of torch's ``nearest`` interpolation.

    ATen's float32 rule ``floor(dst * (float(n_in) / n_out))``, clamped; ONNX Resize divides by
    the inverse scale instead and picks the neighbouring row where the product is an integer.
    """
    scale = np.float32(n_in) / np.float32(n_out)
    idx = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
    return torch.from_numpy(np.minimum(idx, n_in - 1))


class GatherNearest(SizedNearest):
    """:class:`SizedNearest` as two Gathers of constant indices: torch's result, exactly."""

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Rows then columns of ``x`` picked by :func:`nearest_indices`."""
        k = self.kernel_size - 1
        rows = nearest_indices(int(x.shape[-2]), int(size[0]) + k).to(x.device)
        cols = nearest_indices(int(x.shape[-1]), int(size[1]) + k).to(x.device)
        return x.index_select(-2, rows).index_select(-1, cols)


class DepthGraph(nn.Module):
    """Export view of a model: float counts (B,C,H,W) -> the four readouts, finest first.

    Holds an eval-mode float32 CPU copy, so the caller's model is left as it was.
    """

    def __init__(self, model: StereoSpike) -> None:
        super().__init__()
        self.net = with_stateless_neurons(copy.deepcopy(model).float().cpu()).eval()
        for block in self.net.modules():
            if isinstance(block, UpBlock):
                block.up[0] = GatherNearest(block.up[0].kernel_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(depth1, depth2, depth3, depth4)``, each (B,H,W) in metres."""
        depths = self.net.forward(x).depths
        return tuple(reversed(depths))


def onnx_bytes(model: StereoSpike, height: int, width: int, dynamic_batch: bool = False,
               opset: int = OPSET) -> bytes:
    """Serialized ONNX model of ``model`` for (B, C, height, width) float32 counts.

    The batch is 1, or any size with ``dynamic_batch``; height and width are fixed.
    """
    if not (height >= 1 and width >= 1):
        raise ExportError(f'export size {height}x{width}: height and width must be >= 1')
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail with a clear message)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ExportError('ONNX export needs the onnx and onnxscript packages: '
                          'pip install onnx onnxscript') from exc
    graph = DepthGraph(model)
    example = torch.zeros(2 if dynamic_batch else 1, model.config.in_channels, height, width)
    shapes = {'x': {0: torch.export.Dim('batch', min=1, max=4096)}} if dynamic_batch else None
    # the exporter warns about every torchvision operator it cannot register: not ours
    # (a filter, as torch's logging set-up may reset logger levels)
    logs = [logging.getLogger(name) for name in QUIET_LOGGERS]
    quiet = logging.Filter('-')  # a filter name no logger has: passes nothing
    for log in logs:
        log.addFilter(quiet)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            program = torch.onnx.export(graph, (example,), dynamo=True, verbose=False,
                                        input_names=[ONNX_INPUT],
                                        output_names=list(ONNX_OUTPUTS),
                                        opset_version=opset, dynamic_shapes=shapes)
    finally:
        for log in logs:
            log.removeFilter(quiet)
    proto = program.model_proto
    meta = {'stereospike_model_config': json.dumps(model.config.to_dict()),
            'stereospike_height': str(height), 'stereospike_width': str(width),
            'stereospike_outputs': 'depth (finest), depth2, depth3, depth4: (B,H,W) metres'}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def session(model: bytes | str | Path, device: str | torch.device = 'cpu',
            threads: int | None = None) -> InferenceSession:
    """ONNX Runtime session (all graph optimisations) on the CPU or CUDA provider of ``device``.

    ``threads`` defaults to torch's intra-op thread count, so both backends get the same budget.
    """
    ort = onnxruntime_module()
    if isinstance(model, (str, Path)) and not Path(model).is_file():
        raise ExportError(f'{model}: ONNX model file does not exist or is not a file')
    device = torch.device(device)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = int(threads or torch.get_num_threads())
    opts.log_severity_level = 3  # errors only
    providers: list = ['CPUExecutionProvider']
    if device.type == 'cuda':
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise ExportError(f'device {device}: this onnxruntime has no CUDA provider '
                              '(install onnxruntime-gpu) ')
        providers.insert(0, ('CUDAExecutionProvider', {'device_id': device.index or 0}))
    src = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(src, opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        name = model if isinstance(model, (str, Path)) else 'ONNX model'
        raise ExportError(f'{name}: onnxruntime cannot load it ({type(exc).__name__}: '
                          f'{str(exc).splitlines()[0] if str(exc) else ""})') from exc


def model_info(sess: InferenceSession) -> tuple[ModelConfig | None, tuple]:
    """(model config or None, input shape (B, C, H, W) with None for each dynamic size)."""
    meta = sess.get_modelmeta().custom_metadata_map
    config = None
    if 'stereospike_model_config' in meta:
        config = ModelConfig.from_dict(json.loads(meta['stereospike_model_config']))
    shape = tuple(d if isinstance(d, int) else None for d in sess.get_inputs()[0].shape)
    return config, shape


def run(sess: InferenceSession, x: np.ndarray) -> np.ndarray:
    """Finest depth (B,H,W) float32 of float32 counts ``x`` (B,C,H,W)."""
    return sess.run([ONNX_OUTPUTS[0]], {ONNX_INPUT: x})[0]


def parity_input(batch: int, channels: int, height: int, width: int,
                 seed: int = 0) -> np.ndarray:
    """Random event counts (Poisson) as float32, the input of the export check."""
    rng = np.random.default_rng(seed)
    return rng.poisson(PARITY_COUNT_MEAN, (batch, channels, height, width)).astype(np.float32)


def max_difference(sess: InferenceSession, model: StereoSpike, x: np.ndarray) -> float:
    """Largest |depth| difference (m) between the session and the torch ``model`` on ``x``.

    ``model`` should be in eval mode (as the exported graph is).
    """
    with torch.inference_mode():
        want = model.forward(torch.from_numpy(x).to(next(model.parameters()).device))
        want = want.depths[-1].float().cpu().numpy()
    got = run(sess, x)
    if got.shape != want.shape:
        raise ExportError(f'ONNX output shape {got.shape} != torch output shape {want.shape}')
    diff = np.abs(got.astype(np.float64) - want)
    return float(diff.max()) if np.isfinite(diff).all() else float('inf')


def checked_onnx(model: StereoSpike, height: int, width: int, dynamic_batch: bool = False,
                 seed: int = 0, tolerance: float = PARITY_TOLERANCE_M,
                 device: str | torch.device = 'cpu') -> tuple[bytes, InferenceSession, float]:
    """Export, load into ONNX Runtime and compare with torch on random counts.

    Returns ``(onnx bytes, session, max |diff| in m)``; raises :class:`ExportError` above
    ``tolerance``.
    """
    data = onnx_bytes(model, height, width, dynamic_batch)
    sess = session(data, device)
    x = parity_input(2 if dynamic_batch else 1, model.config.in_channels, height, width, seed)
    was_training = model.training
    try:
        diff = max_difference(sess, model.eval(), x)
    finally:
        model.train(was_training)
    if not diff <= tolerance:
        raise ExportError(f'ONNX output differs from torch by {diff:.3g} m (> {tolerance:g} m); '
                          'nothing written')
    return data, sess, diff


def export_onnx(model: StereoSpike, out: str | Path, height: int = SENSOR_HEIGHT,
                width: int = SENSOR_WIDTH,
                dynamic_batch: bool = False, overwrite: bool = False, seed: int = 0,
                tolerance: float = PARITY_TOLERANCE_M) -> dict:
    """Write the checked ONNX model of ``model`` to ``out`` atomically; returns a report dict."""
    out = Path(out)
    if out.suffix.lower() != '.onnx':
        raise ExportError(f'{out}: the output file name must end in .onnx')
    if out.is_dir():
        raise ExportError(f'{out}: is a directory, not a file')
    if out.exists() and not overwrite:
        raise ExportError(f'{out}: exists; pass --overwrite to replace it')
    data, _, diff = checked_onnx(model, height, width, dynamic_batch, seed, tolerance)
    atomic.write_bytes(out, data)
    return {'path': str(out), 'bytes': len(data), 'max_abs_diff_m': diff,
            'input': [('batch' if dynamic_batch else 1), model.config.in_channels, height, width],
            'outputs': list(ONNX_OUTPUTS)}
