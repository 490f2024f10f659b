"""Split table, sample offset, validation selection and split_datasets over tiny tensors files."""
import numpy as np
import pytest

from stereospike_ros.offline import splits
from support.data import write_tensors


def test_split_table_matches_reference():
    s1 = splits.get_split(1)
    assert s1.test_sequence == 'indoor_flying1' and s1.test_crop == (139, 1201)
    assert s1.train == {'indoor_flying2': (159, 1581), 'indoor_flying3': (124, 1816)}
    assert splits.crop_for(2, 'indoor_flying2') == (119, 1421)
    assert splits.crop_for(2, 'indoor_flying1') == (79, 1261)
    assert splits.crop_for(3, 'indoor_flying3') == (72, 1816)
    assert splits.crop_for(3, 'indoor_flying2') == (119, 1581)
    with pytest.raises(splits.SplitError, match='unknown split 4'):
        splits.get_split(4)
    with pytest.raises(splits.SplitError, match='indoor_flying4'):
        splits.crop_for(1, 'indoor_flying4')


def test_sample_offset_and_validation_selection():
    rows = splits.sample_rows(1062)                 # split 1 test crop [139, 1201)
    assert rows[0] == 2 and rows[-1] == 1061 and len(rows) == 1060
    assert 139 + rows[0] == 141 and 139 + rows[-1] == 1200    # frames 141..1200
    val, test = splits.validation_positions(len(rows))
    assert len(val) == 200 and len(test) == 860
    assert val[0] == 0 and val[-1] == 1059 and np.all(np.diff(val) >= 5)
    assert not set(val) & set(test)
    np.testing.assert_array_equal(val, splits.validation_positions(1060)[0])   # deterministic
    with pytest.raises(splits.SplitError, match='need more than 200'):
        splits.validation_positions(150)


def test_split_datasets(tmp_path):
    sizes = {'indoor_flying1': 230, 'indoor_flying2': 7, 'indoor_flying3': 9}
    for seq, n in sizes.items():
        crop = splits.crop_for(1, seq)
        write_tensors(tmp_path / splits.tensors_filename(seq, crop), n=n,
                      attrs={'sequence': seq, 'crop_start': crop[0], 'crop_stop': crop[1]})
    ds = splits.split_datasets(tmp_path, 1)
    assert len(ds['train']) == (7 - 2) + (9 - 2)
    assert len(ds['val']) == 200 and len(ds['test']) == 230 - 2 - 200
    x, y = ds['val'][0]
    assert tuple(x.shape) == (4, 2, 3) and tuple(y.shape) == (2, 3)
    assert ds['val'].rows[0] == 2                   # sample 0 = window 2
    with pytest.raises(splits.SplitError) as info:
        splits.split_datasets(tmp_path, 2)
    msg = str(info.value)
    assert 'indoor_flying2_119-1421.h5' in msg and 'indoor_flying1_79-1261.h5' in msg
    assert 'train/convert.py' in msg
    wrong = tmp_path / splits.tensors_filename('indoor_flying2', (119, 1421))
    write_tensors(wrong, n=3, attrs={'sequence': 'indoor_flying3', 'crop_start': 119,
                                     'crop_stop': 1421})
    with pytest.raises(splits.SplitError, match="holds 'indoor_flying3'"):
        splits.split_datasets(tmp_path, 2)
