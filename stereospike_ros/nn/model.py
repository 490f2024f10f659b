"""StereoSpike: the spiking U-Net that maps stereo event counts to dense metric depth.

Rebuilt from the facts in reference-system.md (no reference code): integrate-and-fire neurons
(threshold 1, hard reset to 0), one time step with state reset before every sample, SEW residual
bottleneck (ADD), nearest upsampling to an explicit size followed by unpadded convolutions, and
four cumulative readouts. ``state_dict()`` keys, shapes and order equal the reference's 21 entries.

Neuron backends: ``'spikingjelly'`` uses ``spikingjelly.activation_based.neuron.IFNode`` (single
step, reset with ``functional.reset_net``); ``'torch'`` is a stateless pure-torch equivalent (with
one time step and reset, an IF layer is exactly ``s = heaviside(x - 1)`` with a surrogate
gradient). Both have no parameters or buffers, so checkpoints are interchangeable. spikingjelly is
imported lazily so this module works on a machine that has only torch.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ('binocular', 'monocular')
NETWORKS = ('snn', 'ann')
SURROGATES = ('reference', 'atan', 'sigmoid')
ACTIVATIONS = ('sigmoid', 'tanh', 'leakyrelu')
BACKENDS = ('spikingjelly', 'torch')

BASE_CHANNELS = (32, 64, 128, 256, 512)


def spikingjelly_available() -> bool:
    """True when ``spikingjelly.activation_based`` can be imported."""
    try:
        import spikingjelly.activation_based.neuron  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored in checkpoints as a plain dict.

    variant: 'binocular' (4 input channels) or 'monocular' (left camera only, 2 channels).
    width: channel multiplier (each layer ``max(1, round(c * width))``), 1.0 is the paper's net.
    surrogate: 'reference' (ATan alpha 2, but the SEW blocks use Sigmoid alpha 4 as the reference
    code did by accident), 'atan' (ATan everywhere) or 'sigmoid' (Sigmoid alpha 4 everywhere).
    network: 'snn' or 'ann' (same topology, biases, activation then BatchNorm after each conv).
    activation: the ANN's activation. neuron_backend: 'spikingjelly' or 'torch' (stateless).
    """

    variant: str = 'binocular'
    width: float = 1.0
    surrogate: str = 'reference'
    network: str = 'snn'
    activation: str = 'sigmoid'
    neuron_backend: str = 'spikingjelly'

    def __post_init__(self) -> None:
        for name, allowed in (('variant', VARIANTS), ('network', NETWORKS),
                              ('surrogate', SURROGATES), ('activation', ACTIVATIONS),
                              ('neuron_backend', BACKENDS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f'ModelConfig.{name}={getattr(self, name)!r}: expected one of '
                                 f'{allowed}')
        if not (isinstance(self.width, (int, float)) and math.isfinite(self.width)
                and self.width > 0):
            raise ValueError(f'ModelConfig.width={self.width!r}: expected a positive number')

    @property
    def in_channels(self) -> int:
        """Input channels the first convolution sees."""
        return 4 if self.variant == 'binocular' else 2

    def channels(self) -> tuple[int, ...]:
        """Encoder channel counts after the width multiplier."""
        return tuple(max(1, int(round(c * self.width))) for c in BASE_CHANNELS)

    def to_dict(self) -> dict:
        """Plain dict (str/float only) for checkpoints."""
        d = asdict(self)
        d['width'] = float(d['width'])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> 'ModelConfig':
        """Rebuild from :meth:`to_dict` output; unknown keys are an error."""
        if not isinstance(d, dict):
            raise ValueError(f'model config must be a dict, got {type(d).__name__}')
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f'unknown model config keys: {sorted(unknown)}')
        return cls(**d)


class ModelOutput(NamedTuple):
    """Training output: cumulative readouts [depth4, depth3, depth2, depth1] (B,H,W) and spikes."""

    depths: list
    spikes: list


# --- neurons -----------------------------------------------------------------------------------

class _Heaviside(torch.autograd.Function):
    """Heaviside step ``x >= 0`` forward, surrogate derivative backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kind: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.kind = kind
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        a = ctx.alpha
        if ctx.kind == 'atan':
            g = (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)
        else:
            s = torch.sigmoid(a * x)
            g = a * s * (1 - s)
        return grad * g, None, None


class StatelessIF(nn.Module):
    """One-time-step IF neuron (threshold 1, reset 0) in pure torch: ``heaviside(x - 1)``."""

    def __init__(self, surrogate: str = 'atan') -> None:
        super().__init__()
        self.kind = surrogate
        self.alpha = 2.0 if surrogate == 'atan' else 4.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes of a freshly reset IF layer driven by ``x`` for one step."""
        if not (torch.is_grad_enabled() and x.requires_grad):
            return (x >= 1.0).to(x.dtype)
        return _Heaviside.apply(x - 1.0, self.kind, self.alpha)

    def extra_repr(self) -> str:
        """Shown by ``print(model)``: the surrogate and its alpha."""
        return f'surrogate={self.kind}, alpha={self.alpha}'


def make_if_neuron(surrogate: str, backend: str) -> nn.Module:
    """IF neuron with threshold 1.0, hard reset 0.0 and the named surrogate ('atan'/'sigmoid')."""
    if backend == 'torch':
        return StatelessIF(surrogate)
    try:
        from spikingjelly.activation_based import neuron, surrogate as sg
    except ImportError as exc:
        raise ImportError('spikingjelly is not installed: install it (pip install --no-deps '
                          'spikingjelly loguru) or use neuron_backend="torch"') from exc
    fn = sg.ATan(alpha=2.0) if surrogate == 'atan' else sg.Sigmoid(alpha=4.0)
    return neuron.IFNode(v_threshold=1.0, v_reset=0.0, surrogate_function=fn, step_mode='s')


# --- building blocks ---------------------------------------------------------------------------

def _activation(name: str) -> nn.Module:
    if name == 'sigmoid':
        return nn.Sigmoid()
    if name == 'tanh':
        return nn.Tanh()
    return nn.LeakyReLU()


class _Builder:
    """Makes conv + nonlinearity stages for the SNN or the ANN flavour of a config."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg

    def stage(self, cin: int, cout: int, k: int, stride: int, pad: int,
              sew: bool = False) -> list[nn.Module]:
        cfg = self.cfg
        if cfg.network == 'ann':
            return [nn.Conv2d(cin, cout, k, stride, pad, bias=True),
                    _activation(cfg.activation), nn.BatchNorm2d(cout)]
        surrogate = cfg.surrogate
        if surrogate == 'reference':
            surrogate = 'sigmoid' if sew else 'atan'
        return [nn.Conv2d(cin, cout, k, stride, pad, bias=False),
                make_if_neuron(surrogate, cfg.neuron_backend)]


class SizedNearest(nn.Module):
    """Legacy ``nearest`` (floor) upsampling to ``(H + k - 1, W + k - 1)`` of a target (H, W)."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Upsample ``x`` so that an unpadded k x k conv returns exactly ``size``."""
        k = self.kernel_size - 1
        return F.interpolate(x, size=(int(size[0]) + k, int(size[1]) + k), mode='nearest')

    def extra_repr(self) -> str:
        """Shown by ``print(model)``: the kernel size it upsamples for."""
        return f'kernel_size={self.kernel_size}'


class UpBlock(nn.Module):
    """``up = Sequential(SizedNearest, conv, [nonlinearity...])``: upsample then unpadded conv."""

    def __init__(self, layers: list[nn.Module], kernel_size: int) -> None:
        super().__init__()
        self.up = nn.Sequential(SizedNearest(kernel_size), *layers)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Output of spatial size ``size``."""
        x = self.up[0](x, size)
        for layer in self.up[1:]:
            x = layer(x)
        return x


class SEWBlock(nn.Module):
    """Spike-element-wise residual block: conv3x3-IF-conv3x3-IF, then ADD the identity."""

    def __init__(self, channels: int, builder: _Builder) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(*builder.stage(channels, channels, 3, 1, 1, sew=True))
        self.conv2 = nn.Sequential(*builder.stage(channels, channels, 3, 1, 1, sew=True))

    def forward(self, x: torch.Tensor, spikes: list | None = None) -> torch.Tensor:
        """``conv2(conv1(x)) + x``; inner spike maps appended to ``spikes`` when given."""
        a = self.conv1(x)
        b = self.conv2(a)
        if spikes is not None:
            spikes += [a, b]
        return b + x


# --- the network -------------------------------------------------------------------------------

class StereoSpike(nn.Module):
    """Binocular/monocular StereoSpike (or its same-topology ANN) from a :class:`ModelConfig`.

    ``forward(x)`` -> :class:`ModelOutput` for training; ``predict(x)`` -> final depth (B,H,W).
    Input: (B,4,H,W) event counts as float (monocular uses channels 0:2, or takes 2 channels).
    """

    SPIKE_LAYERS = ('bottom', 'conv1', 'conv2', 'conv3', 'conv4',
                    'bottleneck.0.conv1', 'bottleneck.0.conv2',
                    'bottleneck.1.conv1', 'bottleneck.1.conv2',
                    'deconv4', 'deconv3', 'deconv2', 'deconv1')

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = config or ModelConfig()
        self.config = cfg
        b = _Builder(cfg)
        c0, c1, c2, c3, c4 = cfg.channels()
        self.bottom = nn.Sequential(*b.stage(cfg.in_channels, c0, 5, 1, 2))
        self.conv1 = nn.Sequential(*b.stage(c0, c1, 5, 2, 2))
        self.conv2 = nn.Sequential(*b.stage(c1, c2, 5, 2, 2))
        self.conv3 = nn.Sequential(*b.stage(c2, c3, 5, 2, 2))
        self.conv4 = nn.Sequential(*b.stage(c3, c4, 5, 2, 2))
        self.bottleneck = nn.Sequential(SEWBlock(c4, b), SEWBlock(c4, b))
        self.deconv4 = nn.Sequential(UpBlock(b.stage(c4, c3, 5, 1, 0), 5))
        self.deconv3 = nn.Sequential(UpBlock(b.stage(c3, c2, 5, 1, 0), 5))
        self.deconv2 = nn.Sequential(UpBlock(b.stage(c2, c1, 5, 1, 0), 5))
        self.deconv1 = nn.Sequential(UpBlock(b.stage(c1, c0, 5, 1, 0), 5))
        for k, c in ((4, c3), (3, c2), (2, c1), (1, c0)):
            head = UpBlock([nn.Conv2d(c, 1, 3, 1, 0, bias=True)], 3)
            setattr(self, f'predict_depth{k}', nn.Sequential(head))

    @property
    def is_spiking(self) -> bool:
        """True for the SNN (False for the ANN variant)."""
        return self.config.network == 'snn'

    def reset_state(self) -> None:
        """Reset every neuron's membrane state (spikingjelly backend; a no-op for the others)."""
        if self.is_spiking and self.config.neuron_backend == 'spikingjelly':
            from spikingjelly.activation_based import functional
            functional.reset_net(self)

    def _select_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f'StereoSpike expects (B,C,H,W) input, got shape {tuple(x.shape)}')
        c = x.shape[1]
        want = self.config.in_channels
        if c == want:
            return x
        if want == 2 and c == 4:
            return x[:, :2]
        raise ValueError(f'{self.config.variant} StereoSpike expects {want} input channels'
                         f'{" (or 4, left used)" if want == 2 else ""}, got {c}')

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """All four cumulative readouts (B,H,W) and the hidden spike tensors of one time step."""
        x = self._select_input(x)
        self.reset_state()  # fresh state for every sample (a batch is processed in parallel)
        try:
            return self._forward(x)
        finally:
            self.reset_state()  # drop membrane tensors (and their autograd graph) after the step

    def _forward(self, x: torch.Tensor) -> ModelOutput:
        full = x.shape[-2:]
        s0 = self.bottom(x)
        s1 = self.conv1(s0)
        s2 = self.conv2(s1)
        s3 = self.conv3(s2)
        s4 = self.conv4(s3)
        spikes = [s0, s1, s2, s3, s4]
        y = self.bottleneck[1](self.bottleneck[0](s4, spikes), spikes)
        d4 = self.deconv4[0](y, s3.shape[-2:])
        u4 = d4 + s3
        d3 = self.deconv3[0](u4, s2.shape[-2:])
        u3 = d3 + s2
        d2 = self.deconv2[0](u3, s1.shape[-2:])
        u2 = d2 + s1
        d1 = self.deconv1[0](u2, s0.shape[-2:])
        u1 = d1 + s0
        spikes += [d4, d3, d2, d1]
        p4 = self.predict_depth4[0](u4, full)[:, 0]
        p3 = self.predict_depth3[0](u3, full)[:, 0]
        p2 = self.predict_depth2[0](u2, full)[:, 0]
        p1 = self.predict_depth1[0](u1, full)[:, 0]
        depth3 = p4 + p3
        depth2 = depth3 + p2
        depth1 = depth2 + p1
        return ModelOutput([p4, depth3, depth2, depth1], spikes if self.is_spiking else [])

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Final depth (B,H,W) in metres without autograd (caller sets eval mode)."""
        with torch.inference_mode():
            return self.forward(x).depths[-1]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def with_stateless_neurons(model: StereoSpike) -> StereoSpike:
    """The same network with the pure-torch stateless IF neurons (identical for one time step).

    Returns ``model`` itself for an ANN or when it already has them; the copy keeps its device.
    """
    if not model.is_spiking or model.config.neuron_backend == 'torch':
        return model
    fast = build_model(model.config, neuron_backend='torch')
    fast.load_state_dict(model.state_dict())
    device = next(model.parameters()).device
    return fast.to(device).train(model.training)


def build_model(config: ModelConfig | dict | None = None, **overrides: object) -> StereoSpike:
    """Build a :class:`StereoSpike` from a config (dataclass or dict) plus keyword overrides.

    The neuron backend falls back to 'torch' when spikingjelly is not installed.
    """
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    cfg = config or ModelConfig()
    if overrides:
        cfg = ModelConfig.from_dict({**cfg.to_dict(), **overrides})
    if cfg.neuron_backend == 'spikingjelly' and cfg.network == 'snn' \
            and not spikingjelly_available():
        cfg = ModelConfig.from_dict({**cfg.to_dict(), 'neuron_backend': 'torch'})
    return StereoSpike(cfg)
