"""Tensors file writer (atomic) and validating reader on tiny files."""
import os

import h5py
import numpy as np
import pytest

from stereospike_ros.io.tensors import TensorsError, TensorsFile, TensorsWriter
from support.data import write_tensors


def test_roundtrip_and_chunking(tmp_path):
    path = write_tensors(tmp_path / 't.h5')
    with TensorsFile(path) as tf:
        assert len(tf) == 3 and (tf.height, tf.width) == (2, 3)
        assert tf.inputs(1).dtype == np.uint16 and tf.inputs(1)[0, 0, 0] == 24
        assert tf.depth(2).dtype == np.float32
        np.testing.assert_array_equal(tf.frame_indices, [5, 6, 7])
        assert tf.attrs['crop_requested'] == '[5, 8]' and tf.attrs['note'] == ''
        assert tf.file['inputs'].chunks == (1, 4, 2, 3)
        assert tf.file['inputs'].compression == 'gzip'
    assert os.listdir(tmp_path) == ['t.h5']


def test_abort_and_exceptions_leave_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with TensorsWriter(tmp_path / 'a.h5', 2, 2, 2):
            raise RuntimeError('boom')
    with TensorsWriter(tmp_path / 'b.h5', 2, 2, 2):
        pass                                     # never committed
    assert os.listdir(tmp_path) == []
    with pytest.raises(TensorsError, match='output folder .* does not exist'):
        TensorsWriter(tmp_path / 'no' / 'c.h5', 1)


@pytest.mark.parametrize('damage, match', [
    ('missing', "missing dataset 'depth'"),
    ('shape', r'depth has shape \(2, 2, 3\), expected \(3, 2, 3\)'),
    ('dtype', "dataset 'inputs' is float32"),
    ('version', 'format_version'),
    ('length', r'timestamps has shape \(4,\), expected \(3,\)'),
])
def test_validation_errors_name_the_file(tmp_path, damage, match):
    path = write_tensors(tmp_path / f'{damage}.h5')
    with h5py.File(path, 'a') as f:
        if damage == 'missing':
            del f['depth']
        elif damage == 'shape':
            del f['depth']
            f['depth'] = np.zeros((2, 2, 3), np.float32)
        elif damage == 'dtype':
            del f['inputs']
            f['inputs'] = np.zeros((3, 4, 2, 3), np.float32)
        elif damage == 'version':
            del f.attrs['format_version']
        else:
            del f['timestamps']
            f['timestamps'] = np.zeros(4)
    with pytest.raises(TensorsError, match=match) as info:
        TensorsFile(path)
    assert str(path) in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(TensorsError, match='none.h5: tensors file not found'):
        TensorsFile(tmp_path / 'none.h5')
    (tmp_path / 'junk.h5').write_bytes(b'\x89HDF junk' * 50)
    with pytest.raises(TensorsError, match='junk.h5: not a readable HDF5 file'):
        TensorsFile(tmp_path / 'junk.h5')
    data = open(write_tensors(tmp_path / 'ok.h5', n=20, h=20, w=30), 'rb').read()
    (tmp_path / 'cut.h5').write_bytes(data[:len(data) // 3])
    with pytest.raises(TensorsError, match='cut.h5'):
        TensorsFile(tmp_path / 'cut.h5')
