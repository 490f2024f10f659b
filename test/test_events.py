"""Events: MVSEC's float64 seconds round-trip through int64 ns bit for bit; slicing and joining."""
import numpy as np
import pytest

from stereospike_ros.io.events import (NS_PER_S, EventOrderError, Events, apply_order_policy,
                                       ns_to_seconds, seconds_to_ns)


def test_seconds_match_rospy_to_sec_and_round_trip():
    rng = np.random.default_rng(1)
    sec = rng.integers(1_400_000_000, 1_600_000_000, 200_000)
    nsec = rng.integers(0, NS_PER_S, 200_000)
    nsec[:4] = [0, 1, NS_PER_S - 1, 500_000_000]
    t_ns = sec * NS_PER_S + nsec
    # rospy's Time.to_sec(): float(secs) + float(nsecs) / 1e9, element by element
    want = np.array([float(s) + float(n) / 1e9 for s, n in zip(sec[:2000], nsec[:2000])])
    got = ns_to_seconds(t_ns)
    np.testing.assert_array_equal(got[:2000], want)
    np.testing.assert_array_equal(got, sec.astype(np.float64) + nsec.astype(np.float64) / 1e9)
    # float64 seconds -> ns -> seconds is the identity, though ns differ by up to ~120 ns
    back = seconds_to_ns(got)
    np.testing.assert_array_equal(ns_to_seconds(back), got)
    assert np.abs(back - t_ns).max() < 200


def test_negative_and_empty_times():
    t = np.array([-NS_PER_S - 5, -1, 0, 5], np.int64)
    # floor semantics like rospy: -1 ns is sec -1 plus 999999999 ns
    want = [-2.0 + 999_999_995 / 1e9, -1.0 + 999_999_999 / 1e9, 0.0, 5 / 1e9]
    np.testing.assert_array_equal(ns_to_seconds(t), want)
    assert ns_to_seconds(np.empty(0, np.int64)).shape == (0,)


def test_slicing_joining_and_validation():
    ev = Events(np.arange(5, dtype=np.uint16), np.arange(5, dtype=np.uint16) + 10,
                np.array([10, 20, 20, 30, 40], np.int64), np.array([1, 0, 1, 0, 1], bool))
    part = ev.time_slice(20, 40)
    np.testing.assert_array_equal(part.t, [20, 20, 30])
    np.testing.assert_array_equal(part.x, [1, 2, 3])
    joined = Events.concatenate([ev[:2], Events.empty(), ev[2:]])
    np.testing.assert_array_equal(joined.t, ev.t)
    assert len(Events.concatenate([])) == 0
    with pytest.raises(ValueError, match='lengths differ'):
        Events(ev.x, ev.y[:4], ev.t, ev.p)


def test_order_policy_one_rule_for_every_reader():
    t = np.array([1.0, 2.0, 1.5, np.nan, 2.0, 3.0])
    keep, last, non_finite, unsorted = apply_order_policy(t[:2], -np.inf, 'error')
    assert keep is None and last == 2.0 and (non_finite, unsorted) == (0, 0)
    with pytest.raises(EventOrderError, match=r'times decrease at event 2 \(2.0 -> 1.5\)'):
        apply_order_policy(t, -np.inf, 'error')
    with pytest.raises(EventOrderError, match='non-finite time at event 0') as info:
        apply_order_policy(t[3:], 2.0, 'error')
    assert (info.value.index, info.value.before) == (0, 2.0)
    keep, last, non_finite, unsorted = apply_order_policy(t, 0.5, 'drop')
    assert keep.tolist() == [True, True, False, False, True, True] and last == 3.0
    assert (non_finite, unsorted) == (1, 1)
    # the running maximum carries over from the previous chunk
    keep, last, _, unsorted = apply_order_policy(np.array([2.5, 3.5]), 3.0, 'drop')
    assert keep.tolist() == [False, True] and last == 3.5 and unsorted == 1
    with pytest.raises(ValueError, match='unsorted policy'):
        apply_order_policy(t, 0.0, 'sort')
