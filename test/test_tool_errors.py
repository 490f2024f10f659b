"""Every CLI answers bad input with one ``PROG: error:`` line, the documented exit status (2 for
the command line, 1 for the data) and no output or folder left behind: one table per tool."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from stereospike_ros.io.events import ns_to_seconds
from stereospike_ros.io.tensors import TensorsFile, TensorsWriter
from stereospike_ros.nn.checkpoint import save_checkpoint
from stereospike_ros.nn.model import ModelConfig, build_model
from stereospike_ros.offline import cli
from stereospike_ros.offline.dataset import TensorsDataset
from support import ROOT, train_script
from support.data import random_rows, write_data, write_gt

H, W = 16, 24            # tensors files (training, evaluation)
N_FRAMES = 6             # MVSEC-layout sequences (conversion; identity calibration 346 x 260)
T0 = 100.0


TOOLS = {name: train_script(name) for name in ('convert', 'synthesize', 'train', 'evaluate',
                                               'firing_rates', 'export')}


def write_tensors(path, n=4, depth=None, event_counts=(5, 5)):
    """A tiny tensors file; ``depth`` overrides the ground truth, ``event_counts`` per window."""
    rng = np.random.default_rng(0)
    with TensorsWriter(path, n, H, W, compression='none') as wr:
        wr.inputs[...] = rng.poisson(1.0, (n, 4, H, W)).astype(np.uint16)
        wr.depth[...] = np.full((n, H, W), 2.0, np.float32) if depth is None else depth
        wr.timestamps[...] = T0 + 0.05 * np.arange(n)
        wr.frame_indices[...] = np.arange(n)
        wr.event_counts[...] = np.broadcast_to(np.asarray(event_counts, np.int64), (n, 2))
        wr.commit()
    return str(path)


def write_sequence(folder, name, depth=2.0, shift=0.0, left_until=None):
    """MVSEC-layout pair: ``N_FRAMES`` depth frames at 20 Hz and events over their span.

    ``shift`` moves the event clock; ``left_until`` ends the left events at that depth frame.
    """
    rng = np.random.default_rng(1)
    ts = T0 + 0.05 * np.arange(N_FRAMES)
    end_left = ts[-1] if left_until is None else ts[left_until]
    left = random_rows(rng, 3000, ts[0] - 0.05 + shift, end_left + shift)
    right = random_rows(rng, 3000, ts[0] - 0.05 + shift, ts[-1] + shift)
    data = write_data(folder / f'{name}_data.hdf5', left, right)
    gt_depth = np.broadcast_to(np.asarray(depth, np.float32), (N_FRAMES, 260, 346))
    gt = write_gt(folder / f'{name}_gt.hdf5', gt_depth, ns_to_seconds(
        np.round(ts * 1e9).astype(np.int64)))
    return data, gt


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Inputs shared by the tables: good and broken tensors files, checkpoints, sequences."""
    d = tmp_path_factory.mktemp('inputs')
    negative = np.full((4, H, W), 2.0, np.float32)
    negative[2, 3, 3] = -1.5
    torch.manual_seed(0)
    save_checkpoint(d / 'snn.pt', build_model(ModelConfig(width=1 / 16)), {})
    save_checkpoint(d / 'ann.pt', build_model(ModelConfig(width=1 / 16, network='ann')), {})
    (d / 'corrupt.pt').write_bytes(b'not a checkpoint' * 10)
    (d / 'corrupt.h5').write_bytes(b'not hdf5' * 10)
    (d / 'corrupt_data.hdf5').write_bytes(b'not hdf5' * 10)
    (d / 'bad.yaml').write_text('lr: [1\n')
    (d / 'badlr.yaml').write_text('lr: -1\n')
    (d / 'typo.yaml').write_text('epoch: 3\n')
    paths = {'good': write_tensors(d / 'good.h5'),
             'nan': write_tensors(d / 'nan.h5', depth=np.full((4, H, W), np.nan, np.float32)),
             'negative': write_tensors(d / 'negative.h5', depth=negative)}
    paths['data'], paths['gt'] = write_sequence(d, 'seq')
    paths['neg_data'], paths['neg_gt'] = write_sequence(
        d, 'neg', depth=np.where(np.arange(346) == 7, -3.0, 2.0).astype(np.float32))
    paths['nan_data'], paths['nan_gt'] = write_sequence(d, 'nan', depth=np.nan)
    paths['late_data'], _ = write_sequence(d, 'late', shift=3600.0)    # offset event clock
    paths.update({k: str(d / f) for k, f in (
        ('snn', 'snn.pt'), ('ann', 'ann.pt'), ('corrupt_pt', 'corrupt.pt'),
        ('corrupt_h5', 'corrupt.h5'), ('corrupt_data', 'corrupt_data.hdf5'),
        ('bad_yaml', 'bad.yaml'), ('badlr_yaml', 'badlr.yaml'), ('typo_yaml', 'typo.yaml'))})
    paths['missing'] = str(d / 'missing.h5')
    return paths


def _populate(tmp):
    """Outputs of earlier runs that the tools must not replace without --overwrite."""
    (tmp / 'exists.h5').write_bytes(b'earlier output')
    (tmp / 'exists.onnx').write_bytes(b'earlier output')
    (tmp / 'afile').write_text('a file, not a folder')
    (tmp / 'run').mkdir()
    (tmp / 'run' / 'best.pt').write_bytes(b'earlier run')
    (tmp / 'eval').mkdir()
    (tmp / 'eval' / 'summary.json').write_text('{}')
    (tmp / 'eval' / 'firing_rates.csv').write_text('earlier')
    (tmp / 'syn').mkdir()
    (tmp / 'syn' / 'c_gt.hdf5').write_bytes(b'earlier')


def _tree(tmp):
    return sorted((str(p.relative_to(tmp)), p.is_file() and p.read_bytes())
                  for p in tmp.rglob('*'))


def check_table_case(tool, argv, code, message, files, tmp_path, capsys):
    """Run ``tool`` in-process: exact status, one error line matching ``message``, no trace."""
    _populate(tmp_path)
    before = _tree(tmp_path)
    argv = [a.format(tmp=tmp_path, **files) for a in argv]
    prog = TOOLS[tool].PROG
    main = getattr(TOOLS[tool], '_main', TOOLS[tool].main)   # export.main runs cli.run itself
    assert cli.run(main, argv, prog=prog) == code, capsys.readouterr().err
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ': warning: ' not in line]
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), err
    assert __import__('re').search(message, lines[0]), (message, lines[0])
    assert _tree(tmp_path) == before, 'a failed run changed, created or left files/folders'


CONVERT = [
    ('no data file', ['--data', '{missing}', '--gt', '{gt}', '--calib', 'identity',
                      '--out', '{tmp}/o.h5'], 2, r'--data .*missing.h5: no such file or folder'),
    ('output exists', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity',
                       '--out', '{tmp}/exists.h5'], 2, r'exists.h5: exists; pass --overwrite'),
    ('output is the input', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity',
                             '--out', '{gt}', '--overwrite'], 2, r'is the input --gt'),
    ('folder without crop', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity',
                             '--out', '{tmp}/newdir/'], 2, r'newdir/: is a folder; give a file'),
    ('output under a file', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity',
                             '--out', '{tmp}/afile/o.h5'], 2, r'afile is not a folder'),
    ('sequence escapes', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity',
                          '--out', '{tmp}/', '--crop', '0:3', '--sequence', '../x'],
     2, r"argument --sequence: '../x' must be a plain name"),
    ('sequence not in split', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity',
                               '--out', '{tmp}/', '--split', '1'],
     2, r"--split 1: sequence 'seq' is not part of split 1"),
    ('bad window', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity',
                    '--out', '{tmp}/o.h5', '--window-ms', '-5'], 2, r'--window-ms: must be > 0'),
    ('bad crop', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity',
                  '--out', '{tmp}/o.h5', '--crop', '5:2'], 2, r"crop '5:2': need 0 <= A < B"),
    ('unknown option', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity',
                        '--out', '{tmp}/o.h5', '--fast'], 2, r'unrecognized arguments: --fast'),
    ('missing option', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity'],
     2, r'the following arguments are required: --out'),
    ('corrupt data', ['--data', '{corrupt_data}', '--gt', '{gt}', '--calib', 'identity',
                      '--out', '{tmp}/sub/o.h5'], 1, r'corrupt_data.hdf5: not a readable HDF5'),
    ('negative depth', ['--data', '{neg_data}', '--gt', '{neg_gt}', '--calib', 'identity',
                        '--out', '{tmp}/sub/o.h5'], 1,
     r'neg_gt.hdf5: depth frame 0 has 260 negative values .*metres > 0'),
    ('no valid depth', ['--data', '{nan_data}', '--gt', '{nan_gt}', '--calib', 'identity',
                        '--out', '{tmp}/sub/o.h5'], 1,
     r'nan_gt.hdf5: no valid ground truth .* in any of the 6 depth frames'),
    ('offset event clock', ['--data', '{late_data}', '--gt', '{gt}', '--calib', 'identity',
                            '--out', '{tmp}/sub/deeper/o.h5'], 1,
     r'late_data.hdf5: the left camera has no event in any of the 6 windows .*same clock'),
    ('window too short', ['--data', '{data}', '--gt', '{gt}', '--calib', 'identity',
                          '--out', '{tmp}/o.h5', '--window-ms', '1e-6'], 1,
     r'no event in any of the 6 windows .*windows long enough'),
]

SYNTHESIZE = [
    ('zero length', ['--out', '{tmp}/s', '--seconds', '0'], 2, r'--seconds: must be > 0'),
    ('render rate', ['--out', '{tmp}/s', '--seconds', '1', '--render-hz', '333'], 2,
     r'--render-hz: 333 Hz does not give an integer ns period'),
    ('name escapes', ['--out', '{tmp}/s', '--seconds', '1', '--name', '../x'], 2,
     r"--name: '../x' must be a plain name"),
    ('bag format', ['--out', '{tmp}/s', '--seconds', '1', '--bags', 'zip'], 2,
     r"unknown bag formats \['zip'\]"),
    ('outputs exist', ['--out', '{tmp}/syn', '--seconds', '1', '--name', 'c'], 2,
     r'syn: already holds c_gt.hdf5; pass --overwrite'),
    ('out is a file', ['--out', '{tmp}/afile', '--seconds', '1'], 2,
     r'afile: is a file; name a folder'),
]

_T = ['--width', '0.0625', '--epochs', '1', '--quiet', '--no-tensorboard']
TRAIN = [
    ('resume and init', ['--train-files', '{good}', '--val-files', '{good}', '--resume', '{snn}',
                         '--init', '{snn}', '--out', '{tmp}/new'] + _T, 2,
     r'--resume continues a run .* give one of them'),
    ('no validation', ['--train-files', '{good}', '--out', '{tmp}/new'] + _T, 2,
     r'--train-files needs --val-files'),
    ('no data', ['--out', '{tmp}/new'] + _T, 2, r'give --train-files and --val-files'),
    ('bad lr', ['--train-files', '{good}', '--val-files', '{good}', '--lr', '-1',
                '--out', '{tmp}/new'] + _T, 2, r'argument --lr: must be > 0, not -1'),
    ('bad width', ['--train-files', '{good}', '--val-files', '{good}', '--width', '0',
                   '--out', '{tmp}/new'], 2, r'argument --width: must be > 0'),
    ('bad betas', ['--train-files', '{good}', '--val-files', '{good}', '--betas', '0.9', '1',
                   '--out', '{tmp}/new'] + _T, 2, r'argument --betas: must be < 1'),
    ('bad device', ['--train-files', '{good}', '--val-files', '{good}', '--device', 'gpu0',
                    '--out', '{tmp}/new'] + _T, 2, r"--device: device 'gpu0' is not a torch"),
    ('fp16 on cpu', ['--train-files', '{good}', '--val-files', '{good}', '--amp', 'fp16',
                     '--device', 'cpu', '--out', '{tmp}/new'] + _T, 2, r'--amp fp16 needs CUDA'),
    ('config missing', ['--config', '{missing}', '--out', '{tmp}/new'], 2,
     r'--config .*missing.h5: no such file'),
    ('config not yaml', ['--config', '{bad_yaml}', '--out', '{tmp}/new'], 2,
     r'bad.yaml: not valid YAML'),
    ('config bad value', ['--config', '{badlr_yaml}', '--out', '{tmp}/new'], 2,
     r'badlr.yaml: argument --lr: must be > 0'),
    ('config typo', ['--config', '{typo_yaml}', '--out', '{tmp}/new'], 2,
     r'typo.yaml: unknown options epoch'),
    ('missing file', ['--train-files', '{missing}', '--val-files', '{good}',
                      '--out', '{tmp}/new'] + _T, 2, r'--train-files .*missing.h5: no such file'),
    ('missing resume', ['--train-files', '{good}', '--val-files', '{good}', '--resume',
                        '{missing}', '--out', '{tmp}/new'] + _T, 2, r'--resume .*: no such file'),
    ('earlier run', ['--train-files', '{good}', '--val-files', '{good}',
                     '--out', '{tmp}/run'] + _T, 2,
     r'run: already holds best.pt; pass --overwrite to replace it'),
    ('init is an output', ['--train-files', '{good}', '--val-files', '{good}', '--init',
                           '{tmp}/run/best.pt', '--out', '{tmp}/run', '--overwrite'] + _T, 2,
     r'best.pt: is the input --init'),
    ('corrupt init', ['--train-files', '{good}', '--val-files', '{good}', '--init',
                      '{corrupt_pt}', '--out', '{tmp}/new'] + _T, 1,
     r'corrupt.pt: not a loadable checkpoint'),
    ('resume another model', ['--train-files', '{good}', '--val-files', '{good}', '--resume',
                              '{ann}', '--out', '{tmp}/new'] + _T, 2,
     r'--resume .*ann.pt: model config .* differs from the command line'),
    ('corrupt data', ['--train-files', '{corrupt_h5}', '--val-files', '{good}',
                      '--out', '{tmp}/new'] + _T, 1, r'corrupt.h5: not a readable HDF5 file'),
    ('no valid depth', ['--train-files', '{good}', '--val-files', '{nan}',
                        '--out', '{tmp}/new'] + _T, 1,
     r'validation set \(4 frames\) has no valid ground truth'),
    ('negative depth', ['--train-files', '{negative}', '--val-files', '{good}',
                        '--out', '{tmp}/new'] + _T, 1,
     r'negative.h5: ground truth of row 2 has 1 negative values'),
]

_E = ['--device', 'cpu', '--quiet']
EVALUATE = [
    ('no checkpoint', ['--checkpoint', '{missing}', '--data', '{good}'] + _E, 2,
     r'--checkpoint .*missing.h5: no such file'),
    ('corrupt checkpoint', ['--checkpoint', '{corrupt_pt}', '--data', '{good}'] + _E, 1,
     r'corrupt.pt: not a loadable checkpoint'),
    ('data and split', ['--checkpoint', '{snn}', '--data', '{good}', '--split', '1',
                        '--data-root', '{tmp}'] + _E, 2, r'give either --data FILE or --split'),
    ('png without out', ['--checkpoint', '{snn}', '--data', '{good}', '--png', '2'] + _E, 2,
     r'--png needs --out'),
    ('bad batch', ['--checkpoint', '{snn}', '--data', '{good}', '--batch-size', '0'] + _E, 2,
     r'argument --batch-size: must be >= 1'),
    ('bad device', ['--checkpoint', '{snn}', '--data', '{good}', '--device', 'cuda:x'], 2,
     r"argument --device: device 'cuda:x' is not a torch device"),
    ('earlier summary', ['--checkpoint', '{snn}', '--data', '{good}', '--out',
                         '{tmp}/eval'] + _E, 2, r'eval: already holds summary.json'),
    ('predictions exist', ['--checkpoint', '{snn}', '--data', '{good}', '--save-predictions',
                           '{tmp}/exists.h5'] + _E, 2, r'exists.h5: exists; pass --overwrite'),
    ('predictions over data', ['--checkpoint', '{snn}', '--data', '{good}',
                               '--save-predictions', '{good}', '--overwrite'] + _E, 2,
     r'--save-predictions .*good.h5: is the input --data'),
    ('out under a file', ['--checkpoint', '{snn}', '--data', '{good}', '--out',
                          '{tmp}/afile/e'] + _E, 2, r'afile is not a folder'),
    ('no split root', ['--checkpoint', '{snn}', '--split', '1', '--data-root',
                       '{tmp}/nothing'] + _E, 2, r'--data-root .*nothing: no such folder'),
    ('split files missing', ['--checkpoint', '{snn}', '--split', '1', '--data-root',
                             '{tmp}/run'] + _E, 1, r'split 1 in .*run: missing .*indoor_flying1'),
    ('negative depth', ['--checkpoint', '{snn}', '--data', '{negative}', '--out',
                        '{tmp}/new'] + _E, 1, r'ground truth of row 2 has 1 negative values'),
    ('no valid depth', ['--checkpoint', '{snn}', '--data', '{nan}', '--out', '{tmp}/new'] + _E,
     1, r'nan.h5: no valid ground truth in any of the 4 frames'),
]

FIRING = [
    ('negative max frames', ['--checkpoint', '{snn}', '--data', '{good}', '--max-frames', '-3'],
     2, r'argument --max-frames: must be >= 0, not -3'),
    ('no data', ['--checkpoint', '{snn}', '--data', '{missing}'], 2, r'--data .*: no such file'),
    ('corrupt checkpoint', ['--checkpoint', '{corrupt_pt}', '--data', '{good}', '--device',
                            'cpu'], 1, r'corrupt.pt: not a loadable checkpoint'),
    ('ann checkpoint', ['--checkpoint', '{ann}', '--data', '{good}', '--device', 'cpu',
                        '--quiet'], 1, r'firing rates need a spiking model'),
    ('earlier rates', ['--checkpoint', '{snn}', '--data', '{good}', '--out', '{tmp}/eval'], 2,
     r'eval: already holds firing_rates.csv'),
    ('corrupt data', ['--checkpoint', '{snn}', '--data', '{corrupt_h5}', '--device', 'cpu'], 1,
     r'corrupt.h5: not a readable HDF5 file'),
]


EXPORT = [
    ('no checkpoint', ['--checkpoint', '{missing}', '--out', '{tmp}/m.onnx'], 2,
     r'--checkpoint .*missing.h5: no such file'),
    ('not onnx', ['--checkpoint', '{snn}', '--out', '{tmp}/m.txt'], 2,
     r'--out .*m.txt: the output file name must end in .onnx'),
    ('output exists', ['--checkpoint', '{snn}', '--out', '{tmp}/exists.onnx'], 2,
     r'exists.onnx: exists; pass --overwrite'),
    ('bad size', ['--checkpoint', '{snn}', '--out', '{tmp}/m.onnx', '--height', '0'], 2,
     r'argument --height: must be >= 1, not 0'),
    ('output under a file', ['--checkpoint', '{snn}', '--out', '{tmp}/afile/m.onnx'], 2,
     r'afile is not a folder'),
    ('corrupt checkpoint', ['--checkpoint', '{corrupt_pt}', '--out', '{tmp}/m.onnx'], 1,
     r'corrupt.pt: not a loadable checkpoint'),
]


TABLES = {'convert': CONVERT, 'synthesize': SYNTHESIZE, 'train': TRAIN, 'evaluate': EVALUATE,
          'firing_rates': FIRING, 'export': EXPORT}
EXTRA_ARGS = {'convert': ['--quiet']}


@pytest.mark.parametrize('tool, argv, code, message',
                         [(tool, *c[1:]) for tool, table in TABLES.items() for c in table],
                         ids=[f'{tool}-{c[0]}' for tool, table in TABLES.items() for c in table])
def test_tool_errors(tool, argv, code, message, files, tmp_path, capsys):
    check_table_case(tool, argv + EXTRA_ARGS.get(tool, []), code, message, files, tmp_path,
                     capsys)


@pytest.mark.slow
@pytest.mark.parametrize('tool, argv, code', [
    ('convert', ['--data', 'missing.hdf5', '--gt', 'g', '--calib', 'identity', '--out', 'o'], 2),
    ('synthesize', ['--out', 'o', '--seconds', '-1'], 2),
    ('train', ['--lr', '0', '--out', 'o'], 2),
    ('evaluate', ['--checkpoint', 'missing.pt', '--data', 'd.h5'], 2),
    ('firing_rates', ['--checkpoint', 'c.pt', '--data', 'd.h5', '--max-frames', '-3'], 2),
    ('export', ['--checkpoint', 'missing.pt', '--out', 'm.onnx'], 2),
])
def test_scripts_exit_with_one_line(tool, argv, code, tmp_path):
    """The scripts themselves (``python train/X.py``) go through the same reporter."""
    proc = subprocess.run([sys.executable, str(ROOT / 'train' / f'{tool}.py')] + argv,
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == code
    assert proc.stderr.count('\n') == 1 and proc.stderr.startswith(f'{tool}.py: error: ')
    assert os.listdir(tmp_path) == []


def test_empty_windows_are_warned_stored_and_left_out(files, tmp_path, capsys):
    """The rule of README 'Errors and safety': a camera without events in a window -> a
    counted warning at conversion, the window left out of evaluation (counted there too)."""
    data, gt = write_sequence(tmp_path, 'quiet', left_until=3)
    out = tmp_path / 'tensors' / 'quiet.h5'
    argv = ['--data', data, '--gt', gt, '--calib', 'identity', '--out', str(out), '--quiet',
            '--no-hole-filling']
    assert cli.run(TOOLS['convert'].main, argv, prog='convert.py') == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith('convert.py: warning: left camera: no event in '
                                               '2 of 6 windows (4, 5)')
    with TensorsFile(out) as tf:
        counts = tf.event_counts
        assert tf.attrs['empty_windows_left'] == 2 and tf.attrs['empty_windows_right'] == 0
    assert (counts[4:, 0] == 0).all() and (counts[:4] > 0).all()
    ds = TensorsDataset(out)
    assert len(ds) == 4 and ds.empty_windows == 2 and list(ds.rows) == [0, 1, 2, 3]
    assert len(TensorsDataset(out, skip_empty=False)) == 6
    # converting again refuses; --overwrite replaces
    assert cli.run(TOOLS['convert'].main, argv, prog='convert.py') == 2
    assert 'exists; pass --overwrite' in capsys.readouterr().err
    assert cli.run(TOOLS['convert'].main, argv + ['--overwrite'], prog='convert.py') == 0
    # a trailing slash names a folder (created), the file is named after sequence and crop
    folder = argv.index('--out') + 1
    argv[folder] = str(tmp_path / 'made') + '/'
    assert cli.run(TOOLS['convert'].main, argv + ['--crop', '0:4'], prog='convert.py') == 0
    assert os.listdir(tmp_path / 'made') == ['quiet_0-4.h5']
    capsys.readouterr()


def test_evaluate_leaves_out_empty_windows_and_counts_them(files, tmp_path, capsys):
    path = write_tensors(tmp_path / 'e.h5', n=4)
    with h5py.File(path, 'r+') as f:
        f['event_counts'][3] = (7, 0)             # the right camera saw nothing in window 3
    summary = TOOLS['evaluate'].main(['--checkpoint', files['snn'], '--data', path,
                                      '--device', 'cpu', '--quiet'])
    assert summary['frames'] == 3 and summary['windows_left_out'] == 1
    assert 'e.h5: 1 window(s) with no event in a camera left out' in capsys.readouterr().err


@pytest.mark.slow
def test_train_overwrite_and_resume_rules(files, tmp_path, capsys):
    base = ['--train-files', files['good'], '--val-files', files['good'], '--width', '0.0625',
            '--epochs', '1', '--max-steps-per-epoch', '1', '--quiet', '--no-tensorboard',
            '--out', str(tmp_path / 'run')]
    first = TOOLS['train'].main(base)
    assert first['global_step'] == 1 and (tmp_path / 'run' / 'best.pt').is_file()
    with pytest.raises(cli.UsageError, match='already holds best.pt, last.pt, train_log.csv'):
        TOOLS['train'].main(base)
    (tmp_path / 'run' / 'notes.txt').write_text('mine')
    again = TOOLS['train'].main(base + ['--overwrite'])
    assert again['global_step'] == 1
    assert 'deleted 4 file(s) of the earlier run' in capsys.readouterr().err
    assert (tmp_path / 'run' / 'notes.txt').read_text() == 'mine'
    with open(tmp_path / 'run' / 'train_log.csv') as f:
        assert len(f.read().splitlines()) == 2           # header + this run's one step
    # resuming the folder's own last.pt continues it without --overwrite
    more = TOOLS['train'].main(base + ['--epochs', '2', '--resume',
                                       str(tmp_path / 'run' / 'last.pt')])
    assert more['global_step'] == 2 and more['epochs_done'] == 2


def test_player_arguments(tmp_path, capsys):
    from stereospike_ros.ros import play
    table = [
        (['--rate', '0', 'x.bag'], 2, r'argument --rate: must be > 0'),
        (['--remap', '/a:/b', str(tmp_path)], 2, r"--remap '/a:/b': expected FROM:=TO"),
        ([str(tmp_path / 'missing.bag')], 2, r'bag .*missing.bag: no such file or folder'),
        (['--loops', '-1', 'x.bag'], 2, r'argument --loops: must be >= 0'),
    ]
    for argv, code, message in table:
        assert play.main(argv) == code
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and err.startswith('play_bag: error: ')
        assert __import__('re').search(message, err), err
