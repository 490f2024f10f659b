"""Rectify + bin: the reference range rule, truncation vs rounding, polarity, saturation, order."""
import numpy as np
import pytest

from stereospike_ros.io.events import Events
from stereospike_ros.windowing.encoding import DROP_KINDS, Rectifier, bin_codes, encode_window

W, H = 6, 4


def ev(x, y, p, t=None) -> Events:
    n = len(x)
    t = np.arange(n, dtype=np.int64) if t is None else np.asarray(t, np.int64)
    return Events(np.asarray(x, np.uint16), np.asarray(y, np.uint16), t, np.asarray(p, bool))


def maps_with(entries: dict) -> tuple[np.ndarray, np.ndarray]:
    """Identity maps with some raw pixels ``(x, y)`` sent to chosen rectified ``(xr, yr)``."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    xm, ym = xx.copy(), yy.copy()
    for (x, y), (xr, yr) in entries.items():
        xm[y, x], ym[y, x] = xr, yr
    return xm, ym


REMAP = {(0, 0): (6.0, 1.0),     # x_rect == W: passes <= W, truncates to column W: edge drop
         (1, 0): (5.9, 3.99),    # truncates to (5, 3)
         (2, 0): (-0.01, 1.0),   # negative: out of range
         (3, 0): (6.2, 1.0),     # beyond W: out of range (not edge)
         (4, 0): (1.0, 4.0),     # y_rect == H: edge drop
         (5, 0): (np.nan, 1.0),  # undefined map value: out of range
         (0, 1): (2.5, 1.5),     # truncate -> (2, 1); rint -> (2, 2) (half to even)
         (1, 1): (5.6, 0.4)}     # truncate -> (5, 0); rint -> x 6 == W: edge drop


def counts_at(counts: np.ndarray) -> dict:
    """``{(channel, y, x): count}`` of the non-zero pixels of a count image."""
    return {tuple(int(v) for v in idx): int(counts[idx]) for idx in zip(*np.nonzero(counts))}


def test_reference_range_rule_truncation():
    rect = Rectifier(W, H, *maps_with(REMAP))
    left = ev([0, 1, 2, 3, 4, 5, 0, 1, 2], [0, 0, 0, 0, 0, 0, 1, 1, 1], [1] * 9)
    counts, stats = encode_window(left, ev([], [], []), rect, rect)
    assert stats == {'beyond_sensor': 0, 'out_of_range': 5, 'rect_edge': 2, 'saturated': 0}
    # (1, 0) -> (5, 3); (0, 1) -> (2, 1); (1, 1) -> (5, 0); (2, 1) is unmapped: (2, 1)
    assert counts_at(counts) == {(0, 3, 5): 1, (0, 1, 2): 2, (0, 0, 5): 1}


def test_rounding_option():
    rect = Rectifier(W, H, *maps_with(REMAP), rounding='round')
    counts, stats = encode_window(ev([1, 0, 1], [0, 1, 1], [1, 1, 1]), ev([], [], []), rect, rect)
    # (5.9, 3.99) rounds to (6, 4): edge; (2.5, 1.5) -> (2, 2); (5.6, 0.4) -> x 6: edge
    assert stats == {'beyond_sensor': 0, 'out_of_range': 2, 'rect_edge': 2, 'saturated': 0}
    assert counts_at(counts) == {(0, 2, 2): 1}
    with pytest.raises(ValueError, match='rounding'):
        Rectifier(W, H, rounding='floor')


def test_lookup_codes_keep_every_event_in_place():
    """Kept events get their count-image code, dropped ones their drop bin, in input order."""
    rect = Rectifier(W, H, *maps_with(REMAP))
    codes = rect.lookup(np.array([2, 0, 7, 1, 3], np.uint16), np.array([3, 0, 0, 1, 2], np.uint16),
                        np.array([True, True, True, False, False]))
    trash = rect.trash
    assert trash == 2 * W * H and len(DROP_KINDS) == 3
    np.testing.assert_array_equal(codes, [3 * W + 2, trash + DROP_KINDS.index('rect_edge'),
                                          trash + DROP_KINDS.index('beyond_sensor'),
                                          W * H + 0 * W + 5, W * H + 2 * W + 3])


def test_beyond_sensor_raw_coordinates_and_identity():
    rect = Rectifier(W, H)
    left = Events(np.array([0, 6, 5, 400, 2], np.uint16), np.array([0, 0, 4, 1, 3], np.uint16),
                  np.arange(5, dtype=np.int64), np.ones(5, bool))
    counts, stats = encode_window(left, ev([], [], []), rect, rect)
    assert stats == {'beyond_sensor': 3, 'out_of_range': 0, 'rect_edge': 0, 'saturated': 0}
    assert counts_at(counts) == {(0, 0, 0): 1, (0, 3, 2): 1}
    with pytest.raises(ValueError, match='x_map has shape'):
        Rectifier(W, H, np.zeros((H, W + 1)), np.zeros((H, W)))


def test_polarity_channels_and_window_order():
    rect = Rectifier(W, H)
    left = ev([1, 1, 2, 3], [0, 0, 1, 2], [True, True, False, True])
    right = ev([4, 5], [3, 3], [False, True])
    counts, stats = encode_window(left, right, rect, rect)
    assert counts.dtype == np.uint16 and counts.shape == (4, H, W)
    expected = np.zeros((4, H, W), np.uint16)
    expected[0, 0, 1] = 2      # L_ON
    expected[0, 2, 3] = 1
    expected[1, 1, 2] = 1      # L_OFF
    expected[3, 3, 4] = 1      # R_OFF
    expected[2, 3, 5] = 1      # R_ON
    np.testing.assert_array_equal(counts, expected)
    assert stats == {'beyond_sensor': 0, 'out_of_range': 0, 'rect_edge': 0, 'saturated': 0}


def test_saturation_counted_never_wrapped():
    n = 70000
    rect = Rectifier(W, H)
    left = ev(np.full(n, 1), np.full(n, 1), np.arange(n) >= 10)
    buf = np.full((4, H, W), 99, np.uint16)
    counts, stats = encode_window(left, ev([], [], []), rect, rect, out=buf)
    assert counts is buf
    assert counts[0, 1, 1] == 65535 and counts[1, 1, 1] == 10
    assert stats['saturated'] == n - 10 - 65535
    assert counts.sum() == 65535 + 10  # the 99s were overwritten
    # accumulating in two halves clips the same number of events
    acc = np.zeros((2, H, W), np.uint16)
    codes = np.full(40000, 3, np.int32)
    c1, _ = bin_codes(codes, acc)
    c2, _ = bin_codes(codes, acc)
    assert (c1, c2) == (0, 80000 - 65535) and acc[0, 0, 3] == 65535


def test_bin_codes_rejects_codes_beyond_the_image():
    with pytest.raises(ValueError, match='beyond'):
        bin_codes(np.array([2 * W * H + len(DROP_KINDS)]), np.zeros((2, H, W), np.uint16))
