"""Checkpoints: our self-describing format, saved atomically and loaded with ``weights_only=True``.

Format: ``{'format': FORMAT, 'model_config': dict, 'state_dict': {name: tensor}, 'meta': dict}``.
``meta`` holds epoch, step, metrics, optimizer/scheduler/RNG state for resume, seed and args; it
may contain only tensors, dicts, lists, tuples, str, int, float, bool and None (safe to load).
The loader also accepts a plain reference state_dict (its 21 names) as the binocular reference net.
"""
from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Union

import torch
from torch import nn

from stereospike_ros.io.errors import InputError
from stereospike_ros.io import atomic
from stereospike_ros.nn.model import ModelConfig, StereoSpike, build_model

FORMAT = 'stereospike-checkpoint-v1'
PathLike = Union[str, os.PathLike]


class CheckpointError(InputError):
    """A checkpoint file that is missing, unreadable, of another kind or of another model."""


def _validate_path(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f'{p}: checkpoint file does not exist')
    if not p.is_file():
        raise CheckpointError(f'{p}: checkpoint path is not a regular file')
    return p


def save_checkpoint(path: PathLike, model: StereoSpike, meta: dict | None = None) -> None:
    """Write model config, weights and ``meta`` atomically to ``path``."""
    if not isinstance(model, StereoSpike):
        raise TypeError(f'save_checkpoint needs a StereoSpike, got {type(model).__name__}')
    state = OrderedDict((k, v.detach().cpu().clone()) for k, v in model.state_dict().items())
    with atomic.atomic_path(path) as tmp:
        torch.save({'format': FORMAT, 'model_config': model.config.to_dict(),
                    'state_dict': state, 'meta': dict(meta or {})}, tmp)


def read_checkpoint(path: PathLike) -> dict:
    """Load and sanity-check the raw checkpoint dict (our format or a plain reference state_dict).

    Returns our format; a plain state_dict is wrapped with the binocular reference config.
    """
    p = _validate_path(path)
    try:
        obj = torch.load(p, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f'{p}: not a loadable checkpoint (not a torch file, or it holds '
                              f'objects that weights_only loading refuses)') from exc
    except Exception as exc:  # torch.load of junk raises many types (IndexError included)
        raise CheckpointError(f'{p}: not a loadable checkpoint ({type(exc).__name__}: '
                              f'{str(exc).splitlines()[0] if str(exc) else ""})') from exc
    if isinstance(obj, dict) and obj.get('format') == FORMAT:
        for key in ('model_config', 'state_dict'):
            if not isinstance(obj.get(key), dict):
                raise CheckpointError(f'{p}: checkpoint has no valid {key!r}')
        obj.setdefault('meta', {})
        return obj
    if isinstance(obj, dict) and 'format' in obj:
        raise CheckpointError(f'{p}: unknown checkpoint format {obj["format"]!r} '
                              f'(expected {FORMAT!r})')
    if isinstance(obj, dict) and obj and all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        return {'format': FORMAT, 'model_config': ModelConfig().to_dict(),
                'state_dict': obj, 'meta': {'source': 'reference state_dict'}}
    raise CheckpointError(f'{p}: not a stereospike checkpoint nor a state_dict '
                          f'(got {type(obj).__name__})')


def check_state_dict(model: nn.Module, state: dict, source: str = 'checkpoint') -> None:
    """Raise :class:`CheckpointError` naming missing/unexpected keys or a shape mismatch."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            f'{source}: state_dict does not match a {describe(model)} model: '
            f'missing keys {missing[:5]}{"..." if len(missing) > 5 else ""}, unexpected keys '
            f'{unexpected[:5]}{"..." if len(unexpected) > 5 else ""}')
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise CheckpointError(
                f'{source}: {k} has shape {tuple(state[k].shape)} but a {describe(model)} model '
                f'needs {tuple(v.shape)}')


def describe(model: nn.Module) -> str:
    """Short text naming the model's variant, network and width."""
    cfg = getattr(model, 'config', None)
    if cfg is None:
        return type(model).__name__
    return f'{cfg.variant} {cfg.network} (width {cfg.width:g})'


def load_checkpoint(path: PathLike, device: str | torch.device = 'cpu',
                    expect_variant: str | None = None) -> tuple[StereoSpike, dict]:
    """Rebuild the model from ``path`` (eval mode, on ``device``) and return ``(model, meta)``.

    ``expect_variant`` ('binocular'/'monocular') makes a checkpoint of the other variant an error.
    """
    ck = read_checkpoint(path)
    try:
        model = build_model(ck['model_config'])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f'{path}: invalid model config: {exc}') from exc
    if expect_variant is not None and model.config.variant != expect_variant:
        raise CheckpointError(f'{path}: checkpoint holds a {model.config.variant} model, '
                              f'expected {expect_variant}')
    check_state_dict(model, ck['state_dict'], str(path))
    model.load_state_dict(ck['state_dict'])
    model.to(device).eval()
    return model, ck['meta']


def load_weights_into(model: StereoSpike, path: PathLike) -> dict:
    """Load the weights of ``path`` into an existing model (shapes checked); returns ``meta``."""
    ck = read_checkpoint(path)
    check_state_dict(model, ck['state_dict'], str(path))
    model.load_state_dict(ck['state_dict'])
    return ck['meta']


#: Entries of a training checkpoint's ``meta`` that only resuming needs.
RESUME_KEYS = ('optimizer', 'scheduler', 'scaler', 'rng', 'position')


def export_for_inference(src: PathLike, dst: PathLike) -> dict:
    """Copy checkpoint ``src`` to ``dst`` without the resume-only state (about 3x smaller).

    Weights, model configuration, metrics and training arguments are kept; returns the meta.
    """
    model, meta = load_checkpoint(src, 'cpu')
    kept = {k: v for k, v in meta.items() if k not in RESUME_KEYS}
    save_checkpoint(dst, model, kept)
    return kept
