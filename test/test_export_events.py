"""export_events: any event bag topic to HDF5 x/y/t/p in message order, with its counters;
atomic, no overwrite without --overwrite, one-line errors, no rclpy."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from stereospike_ros.io import bags, wire
from stereospike_ros.io.codecs import CODECS
from stereospike_ros.io.events import Events
from stereospike_ros.offline import export_events as export
from support import ROOT
from support.data import MONO_BAG, MONO_SUMS, MONO_TOPIC, burst_events

TOPIC = '/cam/events'
BASE = 1_700_000_000_000_000_000


def write_packets(path, fmt, encoding, n_packets=5, bad_at=None, width=346, height=260):
    """A bag of EventPackets (1 ms each); returns the events in message order."""
    parts = []
    with bags.EventBagWriter(path, fmt) as writer:
        for k in range(n_packets):
            ev = burst_events(300, k, width, height, by_row=encoding == 'evt3')
            if encoding == 'evt3':
                ev = Events(ev.x, ev.y, ev.t + k * 1_000_000, ev.p)
                payload, tb = CODECS['evt3'].encode(ev), 0
            else:
                tb = BASE + k * 1_000_000
                ev = Events(ev.x, ev.y, ev.t + tb, ev.p)
                payload = CODECS[encoding].encode(ev, tb)
            name = 'evt21' if k == bad_at else encoding
            msg = wire.EventPacketMsg(tb, 'cam', height, width, k, tb, name, False,
                                      np.frombuffer(payload, np.uint8))
            writer.write_packet(TOPIC, BASE + (k + 1) * 1_000_000, msg)
            if k != bad_at:
                parts.append(ev)
    return Events.concatenate(parts)


def read(path):
    with h5py.File(path, 'r') as f:
        data = {name: f[name][:] for name in 'xytp'}
        return data, dict(f.attrs)


@pytest.mark.parametrize('fmt, encoding', [('sqlite3', 'libcaer_cmp'), ('ros1', 'libcaer'),
                                           ('mcap', 'evt3'), ('sqlite3', 'mono')])
def test_export_event_packets(tmp_path, fmt, encoding, monkeypatch):
    monkeypatch.setattr(export, 'FLUSH_EVENTS', 500)          # several blocks
    bag = tmp_path / ('in.bag' if fmt == 'ros1' else 'in')
    width, height = (1280, 720) if encoding == 'evt3' else (346, 260)
    want = write_packets(bag, fmt, encoding, width=width, height=height)
    out = tmp_path / 'events.h5'
    summary = export.export_events(bag, TOPIC, out, progress=False)
    data, attrs = read(out)
    assert [data[k].dtype for k in 'xytp'] == [np.uint16, np.uint16, np.int64, np.uint8]
    for name in 'xyt':
        np.testing.assert_array_equal(data[name], getattr(want, name))
    np.testing.assert_array_equal(data['p'], want.p.astype(np.uint8))
    assert attrs['encoding'] == encoding and attrs['messages'] == 5
    assert (attrs['width'], attrs['height']) == (width, height)
    assert attrs['events'] == len(want) == summary['events']
    assert attrs['seq_gaps'] == 0 and attrs['message_type'] == bags.EVENT_PACKET_TYPE
    assert attrs['topic'] == TOPIC and attrs['source'] == os.path.abspath(bag)


def test_export_dvs_event_array_bag(tmp_path):
    rng = np.random.default_rng(4)
    bag = tmp_path / 'dvs.bag'
    parts = []
    with bags.EventBagWriter(bag, 'ros1') as writer:
        for k in range(4):
            n = [0, 3, 50, 1][k]
            ev = Events(rng.integers(0, 346, n).astype(np.uint16),
                        rng.integers(0, 260, n).astype(np.uint16),
                        BASE + k * 10 ** 7 + np.sort(rng.integers(0, 10 ** 7, n)),
                        rng.random(n) < 0.5)
            writer.write_events(TOPIC, BASE + (k + 1) * 10 ** 7,
                                wire.EventArrayMsg(BASE, 'cam', 260, 346, ev))
            parts.append(ev)
    out = tmp_path / 'dvs.h5'
    export.export_events(bag, TOPIC, out, progress=False)
    data, attrs = read(out)
    want = Events.concatenate(parts)
    np.testing.assert_array_equal(data['t'], want.t)
    np.testing.assert_array_equal(data['p'], want.p)
    assert attrs['message_type'] == bags.EVENT_ARRAY_TYPE and attrs['messages'] == 4


def test_export_the_real_mono_recording(tmp_path):
    if not MONO_BAG.is_dir():
        pytest.skip(f'{MONO_BAG} not present')
    out = tmp_path / 'mono.h5'
    export.export_events(MONO_BAG, MONO_TOPIC, out, progress=False)
    data, attrs = read(out)
    assert {k: int(data[k].sum(dtype=np.int64)) for k in 'txyp'} == MONO_SUMS
    assert attrs['encoding'] == 'mono' and (attrs['width'], attrs['height']) == (640, 480)
    assert attrs['message_type'] == bags.LEGACY_PACKET_TYPE


def test_bad_packets_stop_or_are_counted_and_nothing_partial_is_left(tmp_path, capsys):
    bag = tmp_path / 'bad'
    want = write_packets(bag, 'sqlite3', 'libcaer_cmp', bad_at=2)
    out = tmp_path / 'out.h5'
    rc = export.main([str(bag), '--topic', TOPIC, '--out', str(out), '--quiet'])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith('export_events: error: ')
    assert str(bag) in err[0] and "unknown encoding 'evt21'" in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == [bag]
    rc = export.main([str(bag), '--topic', TOPIC, '--out', str(out), '--quiet', '--skip-bad'])
    assert rc == 0 and 'rejected_packets 1' in capsys.readouterr().out
    data, attrs = read(out)
    np.testing.assert_array_equal(data['t'], want.t)
    assert attrs['rejected_packets'] == 1 and attrs['unknown_encoding'] == 1
    assert attrs['messages'] == 5


def test_errors_and_overwrite(tmp_path, capsys):
    bag = tmp_path / 'in'
    write_packets(bag, 'mcap', 'libcaer', n_packets=2)
    out = tmp_path / 'out.h5'
    out.write_bytes(b'keep')
    (tmp_path / 'afile').write_text('a file')
    cases = [([str(bag), '--topic', TOPIC, '--out', str(out)], 'exists; pass --overwrite'),
             ([str(bag), '--topic', '/other', '--out', str(tmp_path / 'a.h5')],
              "--topic '/other': not in"),
             ([str(tmp_path / 'none'), '--topic', TOPIC, '--out', str(tmp_path / 'a.h5')],
              'none: no such file or folder'),
             ([str(bag), '--topic', TOPIC, '--out', str(tmp_path)], 'is a folder'),
             ([str(bag), '--topic', TOPIC, '--out', str(tmp_path / 'afile' / 'a.h5')],
              'afile is not a folder')]
    for argv, text in cases:
        assert export.main(argv + ['--quiet']) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith('export_events: error: ') and text in err[0]
    assert out.read_bytes() == b'keep' and not (tmp_path / 'a.h5').exists()
    # a missing output folder is made (and nothing is left when the export fails)
    assert export.main([str(bag), '--topic', TOPIC, '--out', str(tmp_path / 'no' / 'a.h5'),
                        '--quiet']) == 0
    assert read(tmp_path / 'no' / 'a.h5')[1]['messages'] == 2
    assert export.main([str(bag), '--topic', TOPIC, '--out', str(out), '--overwrite',
                        '--quiet']) == 0
    assert read(out)[1]['messages'] == 2
    depth_bag = tmp_path / 'depth'
    with bags.EventBagWriter(depth_bag, 'sqlite3') as writer:
        writer.write_depth('/depth', BASE, BASE, np.ones((2, 3), np.float32), 'cam')
    assert export.main([str(depth_bag), '--topic', '/depth', '--out', str(tmp_path / 'd.h5'),
                        '--quiet']) == 2
    assert 'not an event type' in capsys.readouterr().err


def test_module_entry_point_runs_without_rclpy(tmp_path):
    bag = tmp_path / 'in'
    want = write_packets(bag, 'sqlite3', 'mono', n_packets=2)
    out = tmp_path / 'out.h5'
    code = ('import sys, runpy; sys.argv = ["export_events"] + sys.argv[1:]; '
            'rc = None\n'
            'try:\n    runpy.run_module("stereospike_ros.export_events", run_name="__main__")\n'
            'except SystemExit as e:\n    rc = e.code\n'
            'assert "rclpy" not in sys.modules, "rclpy imported"\nsys.exit(rc)')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + sys.path))
    run = subprocess.run([sys.executable, '-c', code, str(bag), '--topic', TOPIC, '--out',
                          str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f'{len(want)} events from 2 messages (mono)' in run.stdout
    assert len(read(out)[0]['t']) == len(want)
