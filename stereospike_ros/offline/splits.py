"""MVSEC indoor_flying splits 1-3 (Tulyakov et al. 2019, reference crops) mapped to tensors files.

Conventions:

* One tensors file per (sequence, crop), named ``{sequence}_{a}-{b}.h5``
  (:func:`tensors_filename`), made by ``train/convert.py --split N --sequence NAME``; a file
  is shared by every split that uses the same crop. :func:`split_datasets` also checks each
  file's ``sequence`` and crop attributes.
* Reference sample offset: sample ``i`` is window ``i + 2`` with label ``i + 2``
  (:data:`SAMPLE_OFFSET`); the first two windows of every file are never used. The reference's
  last index raised IndexError; here a file of ``N`` windows gives exactly ``N - 2`` samples.
* Validation: :data:`VALIDATION_FRAMES` = 200 samples of the test sequence, evenly spread over it:
  positions ``round(linspace(0, n - 1, 200))`` of its ``n`` samples (first and last included, about
  every 5th frame); the remaining samples are the test set.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stereospike_ros.io.errors import InputError

SAMPLE_OFFSET = 2
VALIDATION_FRAMES = 200


class SplitError(InputError):
    """Unknown split or sequence, or missing / mismatched tensors files."""


@dataclass(frozen=True)
class Split:
    """One split: training sequences with their crops, the test sequence and its crop."""

    number: int
    train: dict
    test_sequence: str
    test_crop: tuple

    def sequences(self) -> list[tuple[str, tuple[int, int], str]]:
        """``(sequence, crop, role)`` of every file the split needs, test first."""
        out = [(self.test_sequence, self.test_crop, 'test')]
        out += [(seq, crop, 'train') for seq, crop in self.train.items()]
        return out


SPLITS = {
    1: Split(1, {'indoor_flying2': (159, 1581), 'indoor_flying3': (124, 1816)},
             'indoor_flying1', (139, 1201)),
    2: Split(2, {'indoor_flying1': (79, 1261), 'indoor_flying3': (124, 1816)},
             'indoor_flying2', (119, 1421)),
    3: Split(3, {'indoor_flying1': (79, 1261), 'indoor_flying2': (119, 1581)},
             'indoor_flying3', (72, 1816)),
}


def get_split(split: int) -> Split:
    """The :class:`Split` of number 1, 2 or 3."""
    try:
        return SPLITS[int(split)]
    except (KeyError, ValueError, TypeError):
        raise SplitError(f'unknown split {split!r}; choose one of {sorted(SPLITS)}') from None


def crop_for(split: int, sequence: str) -> tuple[int, int]:
    """Depth-frame crop ``[a, b)`` of ``sequence`` in ``split`` (its test or train crop)."""
    s = get_split(split)
    if sequence == s.test_sequence:
        return s.test_crop
    if sequence in s.train:
        return s.train[sequence]
    names = [s.test_sequence, *s.train]
    raise SplitError(f'sequence {sequence!r} is not part of split {s.number} ({", ".join(names)})')


def tensors_filename(sequence: str, crop: tuple[int, int]) -> str:
    """File name of the tensors file of ``sequence`` cropped to ``[a, b)``."""
    return f'{sequence}_{int(crop[0])}-{int(crop[1])}.h5'


def sample_rows(n_windows: int) -> np.ndarray:
    """Rows (windows) of a tensors file used as samples: ``SAMPLE_OFFSET .. N - 1``."""
    return np.arange(SAMPLE_OFFSET, max(SAMPLE_OFFSET, int(n_windows)), dtype=np.int64)


def validation_positions(n_samples: int, n_val: int = VALIDATION_FRAMES
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (validation, test) positions among ``n_samples`` test-sequence samples."""
    if n_samples <= n_val:
        raise SplitError(f'test sequence has {n_samples} samples, need more than {n_val}')
    val = np.unique(np.round(np.linspace(0, n_samples - 1, n_val)).astype(np.int64))
    test = np.setdiff1d(np.arange(n_samples, dtype=np.int64), val)
    return val, test


def split_files(data_root: str | os.PathLike, split: int) -> dict[str, list[Path]]:
    """Paths of the tensors files of a split, ``{'train': [...], 'test': [path]}``, all checked.

    Raises :class:`SplitError` listing every missing or mismatched file and how to make it.
    """
    from stereospike_ros.io.tensors import TensorsError, TensorsFile
    s = get_split(split)
    root = Path(os.fspath(data_root))
    if not root.is_dir():
        raise SplitError(f'{root}: data root is not a directory')
    problems, files = [], {'train': [], 'test': []}
    for seq, crop, role in s.sequences():
        path = root / tensors_filename(seq, crop)
        hint = (f'python train/convert.py --data {seq}_data.hdf5 --gt {seq}_gt.hdf5 '
                f'--calib CALIB --split {s.number} --sequence {seq} --out {path}')
        if not path.is_file():
            problems.append(f'missing {path} (make it with: {hint})')
            continue
        try:
            with TensorsFile(path) as tf:
                attrs = tf.attrs
        except TensorsError as exc:
            problems.append(str(exc))
            continue
        got_crop = (attrs.get('crop_start'), attrs.get('crop_stop'))
        requested = attrs.get('crop_requested', '')
        if attrs.get('sequence') != seq or (got_crop != tuple(crop) and
                                            str(requested) != str(list(crop))):
            problems.append(f'{path}: holds {attrs.get("sequence")!r} frames {got_crop}, '
                            f'expected {seq!r} frames {tuple(crop)}')
            continue
        files[role].append(path)
    if problems:
        raise SplitError(f'split {s.number} in {root}: ' + '; '.join(problems))
    return files


def split_datasets(data_root: str | os.PathLike, split: int) -> dict:
    """``{'train', 'val', 'test'}`` datasets of a split from its tensors files."""
    from torch.utils.data import ConcatDataset

    from stereospike_ros.offline.dataset import TensorsDataset
    from stereospike_ros.io.tensors import TensorsFile
    files = split_files(data_root, split)
    train = []
    for path in files['train']:
        with TensorsFile(path) as tf:
            n = len(tf)
        train.append(TensorsDataset(path, sample_rows(n)))
    test_path = files['test'][0]
    with TensorsFile(test_path) as tf:
        rows = sample_rows(len(tf))
    val_pos, test_pos = validation_positions(len(rows))
    return {'train': ConcatDataset(train), 'val': TensorsDataset(test_path, rows[val_pos]),
            'test': TensorsDataset(test_path, rows[test_pos])}
