"""MVSEC HDF5 readers on tiny hand-made files: streaming, drops, sortedness, malformed files."""
import os

import h5py
import numpy as np
import pytest

from stereospike_ros.io.mvsec import MvsecData, MvsecError, MvsecGroundTruth
from support.data import random_rows, rows, write_data, write_gt


def test_streaming_chunks_and_time_range(tmp_path):
    rng = np.random.default_rng(1)
    left = random_rows(rng, 1000, 100.0, 101.0)
    right = random_rows(rng, 500, 100.0, 101.0)
    path = write_data(tmp_path / 'a_data.hdf5', left, right, chunks=(64, 4))
    with MvsecData(path) as mv:
        assert mv.num_events('left') == 1000
        start, stop = 100.25, 100.5
        a, b = mv.row_range('left', start, stop)
        assert (a, b) == tuple(np.searchsorted(left[:, 2], [start, stop], 'left'))
        got = list(mv.chunks('left', start, stop, chunk=37))
        assert [len(c.seconds) for c in got[:-1]] == [37] * (len(got) - 1)
        sec = np.concatenate([c.seconds for c in got])
        np.testing.assert_array_equal(sec, left[a:b, 2])
        np.testing.assert_array_equal(np.concatenate([c.x for c in got]), left[a:b, 0])
        on = np.concatenate([c.on for c in got])
        np.testing.assert_array_equal(on, left[a:b, 3] == 1)
        assert sum(c.drops['read'] for c in got) == b - a
        # as Events (int64 ns), the seconds are bit-identical to the stored floats
        ev = [c.to_events() for c in mv.chunks('right', chunk=100)]
        assert all(len(e) <= 100 for e in ev)
        np.testing.assert_array_equal(np.concatenate([e.seconds for e in ev]), right[:, 2])
        assert ev[0].x.dtype == np.uint16 and ev[0].p.dtype == bool


def test_invalid_coordinates_dropped_and_counted(tmp_path):
    x = [0, np.nan, 345, 346, 5, np.inf, 3, -1, 7]
    y = [0, 1, 259, 2, 260, 3, -np.inf, 4, 5]
    t = np.arange(9) + 10.0
    p = [1, -1, 1, 1, -1, 1, 1, -1, -1]
    path = write_data(tmp_path / 'b_data.hdf5', rows(x, y, t, p), rows([1], [1], [10.0], [1]))
    with MvsecData(path) as mv:
        (c,) = list(mv.chunks('left'))
    assert c.drops == {'read': 9, 'non_finite': 3, 'beyond_sensor': 3, 'unsorted': 0}
    np.testing.assert_array_equal(c.x, [0, 345, 7])
    np.testing.assert_array_equal(c.y, [0, 259, 5])
    np.testing.assert_array_equal(c.seconds, [10.0, 12.0, 18.0])
    np.testing.assert_array_equal(c.on, [True, True, False])


def test_unsorted_times_error_or_counted_drop(tmp_path):
    t = [1.0, 2.0, 3.0, 2.5, 4.0, np.nan, 5.0, 4.5, 6.0]
    n = len(t)
    left = rows(np.zeros(n), np.zeros(n), t, np.ones(n))
    path = write_data(tmp_path / 'c_data.hdf5', left, left[:2])
    with MvsecData(path) as mv:
        with pytest.raises(MvsecError, match=r'c_data\.hdf5.*davis/left/events.*row 3'):
            list(mv.chunks('left', chunk=4))
    with MvsecData(path, unsorted='drop') as mv:
        got = list(mv.chunks('left', chunk=4))
    sec = np.concatenate([c.seconds for c in got])
    np.testing.assert_array_equal(sec, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    drops = {k: sum(c.drops[k] for c in got) for k in got[0].drops}
    assert drops == {'read': 9, 'non_finite': 1, 'beyond_sensor': 0, 'unsorted': 2}


@pytest.mark.parametrize('problem, match', [
    ('missing', r"missing dataset 'davis/right/events'"),
    ('shape', r'davis/left/events has shape \(3, 3\), expected \(N, 4\)'),
    ('dtype', r'dtype int64, expected float'),
    ('group', r'is not a dataset'),
])
def test_malformed_data_files(tmp_path, problem, match):
    path = tmp_path / f'{problem}_data.hdf5'
    good = rows([1, 2, 3], [1, 1, 1], [1.0, 2.0, 3.0], [1, 1, 1])
    with h5py.File(path, 'w') as f:
        f['davis/left/events'] = good if problem != 'shape' else good[:, :3]
        if problem == 'dtype':
            del f['davis/left/events']
            f['davis/left/events'] = good.astype(np.int64)
        if problem == 'group':
            f.create_group('davis/right/events')
        elif problem != 'missing':
            f['davis/right/events'] = good
    with pytest.raises(MvsecError, match=match) as info:
        MvsecData(path)
    assert str(path) in str(info.value)


def test_not_hdf5_truncated_and_missing_files(tmp_path):
    junk = tmp_path / 'junk_data.hdf5'
    junk.write_bytes(b'this is not an HDF5 file' * 10)
    with pytest.raises(MvsecError, match='junk_data.hdf5: not a readable HDF5 file'):
        MvsecData(junk)
    with pytest.raises(MvsecError, match='nope_data.hdf5: MVSEC data file not found'):
        MvsecData(tmp_path / 'nope_data.hdf5')
    rng = np.random.default_rng(2)
    ev = random_rows(rng, 20000, 1.0, 2.0)
    full = write_data(tmp_path / 'full_data.hdf5', ev, ev)
    data = open(full, 'rb').read()
    cut = tmp_path / 'cut_data.hdf5'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(MvsecError, match='cut_data.hdf5') as info:
        with MvsecData(cut) as mv:
            for side in ('left', 'right'):
                list(mv.chunks(side))
    assert 'cut_data.hdf5' in str(info.value)


def test_ground_truth_reader_and_validation(tmp_path):
    depth = np.full((3, 4, 5), 2.0, np.float32)
    depth[1, 0, 0] = np.nan
    ts = np.array([1.0, 1.05, 1.1])
    path = write_gt(tmp_path / 's_gt.hdf5', depth, ts)
    with MvsecGroundTruth(path, width=5, height=4) as gt:
        assert len(gt) == 3
        np.testing.assert_array_equal(gt.timestamps, ts)
        frame = gt.depth(1)
        assert frame.dtype == np.float32 and frame.shape == (4, 5) and np.isnan(frame[0, 0])
    with pytest.raises(MvsecError,
                       match=r"s_gt.hdf5: .*shape \(3, 4, 5\), expected \(N, 260, 346\)"):
        MvsecGroundTruth(path)
    bad = write_gt(tmp_path / 'ts_gt.hdf5', depth, ts[:2])
    with pytest.raises(MvsecError, match=r'ts_gt.hdf5: .*_ts has shape \(2,\), expected \(3,\)'):
        MvsecGroundTruth(bad, width=5, height=4)
    nan_ts = write_gt(tmp_path / 'nan_gt.hdf5', depth, [1.0, np.nan, 1.1])
    with pytest.raises(MvsecError, match='nan_gt.hdf5: .*NaN or infinite'):
        MvsecGroundTruth(nan_ts, width=5, height=4)
    with h5py.File(tmp_path / 'nodepth_gt.hdf5', 'w') as f:
        f['davis/left/depth_image_rect_ts'] = ts
    with pytest.raises(MvsecError, match="nodepth_gt.hdf5: missing dataset 'davis/left/depth"):
        MvsecGroundTruth(tmp_path / 'nodepth_gt.hdf5')
    assert os.path.exists(path)
