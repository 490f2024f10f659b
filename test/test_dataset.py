"""TensorsDataset: lazy reads, indices, float32 tensors, DataLoader with worker processes."""
import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

from stereospike_ros.offline.dataset import TensorsDataset, left_out_warning
from stereospike_ros.io.tensors import TensorsError
from support.data import write_tensors


def test_items_and_indices(tmp_path):
    path = write_tensors(tmp_path / 'd.h5', n=5)
    ds = TensorsDataset(path, indices=[4, 1])
    assert len(ds) == 2
    x, y = ds[0]
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    assert tuple(x.shape) == (4, 2, 3) and tuple(y.shape) == (2, 3)
    assert x[0, 0, 0].item() == 4 * 24
    assert ds[-1][0][0, 0, 0].item() == 24
    with pytest.raises(IndexError):
        ds[2]
    with pytest.raises(TensorsError, match='outside'):
        TensorsDataset(path, indices=[5])
    ds2 = pickle.loads(pickle.dumps(ds))            # handle never pickled
    assert torch.equal(ds2[1][0], ds[1][0])


def test_dataloader_with_workers(tmp_path):
    path = write_tensors(tmp_path / 'w.h5', n=6)
    ds = TensorsDataset(path)
    ds[0]                                          # parent opened its own handle first
    loader = DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    xs = torch.cat([x for x, _ in loader])
    assert xs.shape == (6, 4, 2, 3)
    want = np.arange(6 * 24, dtype=np.float32).reshape(6, 4, 2, 3)
    assert torch.equal(xs, torch.from_numpy(want))


def _with_empty_windows(path, windows):
    """A tensors file whose right camera saw nothing in ``windows``."""
    write_tensors(path, n=5)
    with h5py.File(path, 'r+') as f:
        for i in windows:
            f['event_counts'][i] = (7, 0)
    return TensorsDataset(path)


def test_left_out_windows_make_one_warning_line(tmp_path):
    """One file is named; many files are summed into one line (a training run over hundreds
    of files warns once, not once per file)."""
    assert left_out_warning(TensorsDataset(write_tensors(tmp_path / 'full.h5', n=5))) is None
    one = _with_empty_windows(tmp_path / 'a.h5', [0, 3])
    assert len(one) == 3
    assert left_out_warning(one) == f'{one.path}: 2 window(s) with no event in a camera left out'
    many = ConcatDataset([_with_empty_windows(tmp_path / f'f{i}.h5', [0]) for i in range(5)])
    line = left_out_warning(many, one)
    assert line == ('7 window(s) with no event in a camera left out of 6 files: f0.h5 (1), '
                    'f1.h5 (1), f2.h5 (1) and 3 more')
