"""train.py, evaluate.py, firing_rates.py end to end on small learnable synthetic tensors files."""
import csv
import json
import re

import h5py
import numpy as np
import pytest
import torch

from stereospike_ros.nn.checkpoint import load_checkpoint, save_checkpoint
from stereospike_ros.nn.inference import Predictor
from stereospike_ros.nn.model import ModelConfig, build_model
from stereospike_ros.io.mvsec import MVSEC_FOCAL_BASELINE
from stereospike_ros.io.tensors import TensorsError, TensorsWriter
from support import train_script
from support.data import write_synthetic, write_tensors
from stereospike_ros.offline import cli

train = train_script('train')
evaluate = train_script('evaluate')
firing = train_script('firing_rates')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A narrow SNN trained ~1 min on CPU (shared by the acceptance and evaluation tests).

    The NON-reference L1 term pins the scale: the reference loss alone is offset-blind and needs
    far more steps to find the absolute depth.
    """
    tmp = tmp_path_factory.mktemp('train')
    _, dtr = write_synthetic(tmp / 'train.h5', 32, seed=1)
    _, dva = write_synthetic(tmp / 'val.h5', 8, seed=2)
    torch.set_num_threads(2)
    summary = train.main([
        '--train-files', str(tmp / 'train.h5'), '--val-files', str(tmp / 'val.h5'),
        '--width', '0.125', '--epochs', '12', '--lr', '2e-3', '--batch-size', '4',
        '--milestones', '100', '--l1-weight', '1', '--out', str(tmp / 'run'), '--quiet'])
    return tmp, summary, dtr, dva


@pytest.mark.slow
def test_narrow_model_beats_constant_mean_depth(trained):
    tmp, summary, dtr, dva = trained
    mean_depth = np.nanmean(dtr)
    baseline = np.mean([np.nanmean(np.abs(d - mean_depth)) for d in dva])
    assert summary['epochs_done'] == 12 and summary['stopped'] is None
    assert summary['best_val_mde_cm'] < 0.6 * baseline * 100, (summary, baseline)
    for name in ('best.pt', 'last.pt', 'summary.json', 'train_log.csv'):
        assert (tmp / 'run' / name).is_file()
    assert list((tmp / 'run' / 'tb').glob('events.out.tfevents.*'))
    model, meta = load_checkpoint(tmp / 'run' / 'best.pt')
    assert meta['metrics']['mde'] * 100 == pytest.approx(summary['best_val_mde_cm'])
    assert 0 < meta['metrics']['firing_rate'] < 1


@pytest.mark.slow
def test_evaluate_matches_independent_numpy(trained, tmp_path):
    tmp, _, _, dva = trained
    out = tmp_path / 'eval'
    pred_path = tmp_path / 'pred.h5'
    summary = evaluate.main(['--checkpoint', str(tmp / 'run' / 'best.pt'), '--data',
                             str(tmp / 'val.h5'), '--out', str(out), '--save-predictions',
                             str(pred_path), '--png', '2', '--device', 'cpu', '--baseline',
                             '--quiet'])
    with h5py.File(pred_path, 'r') as f:
        pred = f['depth'][()]
        assert pred.dtype == np.float32 and pred.shape == dva.shape
        np.testing.assert_array_equal(f['frame_indices'][()], np.arange(8) + 100)
    with h5py.File(tmp / 'val.h5', 'r') as f:
        counts = f['inputs'][()]
    direct = Predictor(str(tmp / 'run' / 'best.pt'), device='cpu', warmup_shape=None)
    raw = direct.predict(counts)
    # Saved exactly as the node publishes depth: the raw prediction, NaN where not positive.
    np.testing.assert_allclose(pred, np.where(raw > 0, raw, np.nan), rtol=1e-5, atol=1e-5,
                               equal_nan=True)
    mdes, onepx, cover = [], [], []
    for p, g in zip(pred.astype(np.float64), dva.astype(np.float64)):
        v = np.isfinite(g) & np.isfinite(p)           # NaN predictions are not scored
        mdes.append(np.abs(p[v] - g[v]).mean())
        de = np.abs(MVSEC_FOCAL_BASELINE / p[v] - MVSEC_FOCAL_BASELINE / g[v])
        onepx.append((de <= 1).mean())
        cover.append(v.sum() / np.isfinite(g).sum())
    assert summary['mde_cm'] == pytest.approx(100 * np.mean(mdes), rel=1e-9)
    assert summary['one_px'] == pytest.approx(np.mean(onepx), rel=1e-9)
    assert summary['coverage'] == pytest.approx(np.mean(cover), rel=1e-9)
    const = dva[np.isfinite(dva)].astype(np.float64).mean()
    base = [np.abs(const - g[np.isfinite(g)]).mean() for g in dva.astype(np.float64)]
    assert summary['baseline']['depth_m'] == pytest.approx(const, rel=1e-6)
    assert summary['baseline']['mde_cm'] == pytest.approx(100 * np.mean(base), rel=1e-5)
    saved = json.loads((out / 'summary.json').read_text())
    assert saved['mde_cm'] == pytest.approx(summary['mde_cm'])
    rows = list(csv.DictReader(open(out / 'frames.csv')))
    assert len(rows) == 8 and float(rows[3]['mde']) == pytest.approx(mdes[3], rel=1e-9)
    assert len(list(out.glob('frame_*.png'))) == 2
    rates = firing.main(['--checkpoint', str(tmp / 'run' / 'best.pt'), '--data',
                         str(tmp / 'val.h5'), '--out', str(out), '--device', 'cpu', '--quiet'])
    assert [r['layer'] for r in rates][:2] == ['bottom', 'conv1'] and rates[-1]['layer'] == 'all'
    assert all(0 <= r['rate'] <= 1 for r in rates)
    assert (out / 'firing_rates.csv').is_file()


def _tiny_args(tmp, out, *extra):
    return ['--train-files', str(tmp / 't.h5'), '--val-files', str(tmp / 'v.h5'),
            '--width', '0.125', '--epochs', '2', '--max-steps-per-epoch', '3', '--lr', '1e-3',
            '--out', str(out), '--quiet', '--no-tensorboard', *extra]


def _losses(out):
    with open(out / 'train_log.csv') as f:
        return [(int(r['global_step']), int(r['epoch']), float(r['loss']))
                for r in csv.DictReader(f)]


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
    write_synthetic(tmp_path / 't.h5', 6, 16, 24, seed=3)
    write_synthetic(tmp_path / 'v.h5', 2, 16, 24, seed=4)
    full = train.main(_tiny_args(tmp_path, tmp_path / 'a'))
    part = train.main(_tiny_args(tmp_path, tmp_path / 'b', '--stop-after-steps', '4'))
    assert part['stopped'] == 'stop-after-steps' and part['global_step'] == 4
    meta = load_checkpoint(tmp_path / 'b' / 'last.pt')[1]
    assert (meta['epoch'], meta['position']) == (1, 1)  # stopped inside the second epoch
    rest = train.main(_tiny_args(tmp_path, tmp_path / 'b', '--resume',
                                 str(tmp_path / 'b' / 'last.pt')))
    assert rest['global_step'] == full['global_step'] == 6
    a, b = _losses(tmp_path / 'a'), _losses(tmp_path / 'b')
    assert [s[:2] for s in a] == [s[:2] for s in b]
    np.testing.assert_allclose([s[2] for s in b], [s[2] for s in a], rtol=1e-6)
    assert len({s[2] for s in a}) > 1
    ma = load_checkpoint(tmp_path / 'a' / 'last.pt')[0].state_dict()
    mb = load_checkpoint(tmp_path / 'b' / 'last.pt')[0].state_dict()
    for k in ma:
        torch.testing.assert_close(ma[k], mb[k], rtol=1e-5, atol=1e-6)


def test_select_one_px_keeps_the_most_accurate_epoch(tmp_path, capsys):
    """--select one_px: best.pt is the epoch of highest validation one-pixel accuracy (printed
    per epoch), and a resume must keep the rule."""
    write_synthetic(tmp_path / 't.h5', 6, 16, 24, seed=3)
    write_synthetic(tmp_path / 'v.h5', 2, 16, 24, seed=4)
    args = _tiny_args(tmp_path, tmp_path / 's', '--select', 'one_px')
    args[args.index('--epochs') + 1] = '3'
    summary = train.main(args)
    printed = [float(m) for m in re.findall(r'1PA ([0-9.]+) %', capsys.readouterr().out)]
    assert len(printed) == 3
    best = int(np.argmax(printed))
    assert summary['select'] == 'one_px' and summary['best_epoch'] == best
    assert 100 * summary['best_val_one_px'] == pytest.approx(printed[best], abs=0.05)
    meta = load_checkpoint(tmp_path / 's' / 'best.pt')[1]
    assert meta['metrics']['one_px'] == summary['best_val_one_px']
    assert meta['select'] == 'one_px' and meta['best_metrics']['epoch'] == best
    with pytest.raises(cli.UsageError, match='chose best.pt by one_px, not --select mde'):
        train.main(_tiny_args(tmp_path, tmp_path / 's', '--resume',
                              str(tmp_path / 's' / 'last.pt')))


def test_bad_inputs_give_clear_errors(tmp_path):
    write_synthetic(tmp_path / 't.h5', 4, 16, 24, seed=5)
    write_synthetic(tmp_path / 'v.h5', 2, 16, 24, seed=6)
    with h5py.File(tmp_path / 'broken.h5', 'w') as f:
        f['inputs'] = np.zeros((2, 4, 16, 24), np.uint16)
    with pytest.raises(TensorsError, match="broken.h5.*'depth'"):
        train.main(['--train-files', str(tmp_path / 'broken.h5'), '--val-files',
                    str(tmp_path / 'v.h5'), '--out', str(tmp_path / 'x'), '--quiet'])
    with TensorsWriter(tmp_path / 'nan.h5', 2, 16, 24, compression='none') as wr:
        wr.inputs[...] = 1
        wr.commit()  # depth keeps its NaN fill value
    with pytest.raises(cli.ToolError, match='no valid ground truth'):
        train.main(['--train-files', str(tmp_path / 't.h5'), '--val-files',
                    str(tmp_path / 'nan.h5'), '--out', str(tmp_path / 'x'), '--quiet'])
    mono = tmp_path / 'mono.pt'
    save_checkpoint(mono, build_model(variant='monocular', width=0.125), {})
    with pytest.raises(cli.UsageError, match='model config'):
        train.main(_tiny_args(tmp_path, tmp_path / 'c', '--resume', str(mono)))
    with pytest.raises(cli.ToolError, match='no valid ground truth'):
        evaluate.main(['--checkpoint', str(mono), '--data', str(tmp_path / 'nan.h5'),
                       '--device', 'cpu', '--quiet'])


@pytest.mark.slow
def test_nan_only_training_frames_are_skipped_and_counted(tmp_path):
    _, depth = write_synthetic(tmp_path / 'v.h5', 2, 16, 24, seed=7)
    with TensorsWriter(tmp_path / 't.h5', 3, 16, 24, compression='none') as wr:
        wr.inputs[...] = 2
        wr.depth[0] = depth[0]  # rows 1 and 2 keep the NaN fill value
        wr.commit()
    summary = train.main(['--train-files', str(tmp_path / 't.h5'), '--val-files',
                          str(tmp_path / 'v.h5'), '--width', '0.125', '--epochs', '1',
                          '--out', str(tmp_path / 'o'), '--quiet', '--no-tensorboard'])
    assert summary['skipped_frames_without_gt'] == 2 and summary['global_step'] == 3


def test_yaml_config_and_reference_defaults(tmp_path):
    args = train.parse_args([])
    assert (args.lr, tuple(args.betas), args.milestones, args.gamma, args.epochs,
            args.batch_size, args.seed) == (2e-4, (0.9, 0.999), [8, 42, 60], 0.5, 70, 1, 2021)
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('epochs: 5\nwidth: 0.5\nspike-penalty: 0.5\n')
    args = train.parse_args(['--config', str(cfg), '--epochs', '7'])
    assert (args.epochs, args.width, args.spike_penalty) == (7, 0.5, 0.5)
    cfg.write_text('epoch: 5\n')
    with pytest.raises(cli.UsageError, match='c.yaml: unknown options epoch'):
        train.parse_args(['--config', str(cfg)])


def test_evaluate_split_route_scores_the_test_frames(tmp_path):
    from stereospike_ros.offline import splits
    root = tmp_path / 'tensors'
    root.mkdir()
    for seq, n in {'indoor_flying1': 205, 'indoor_flying2': 3, 'indoor_flying3': 3}.items():
        crop = splits.crop_for(1, seq)
        write_tensors(root / splits.tensors_filename(seq, crop), n=n, h=16, w=24,
                      attrs={'sequence': seq, 'crop_start': crop[0], 'crop_stop': crop[1]})
    ckpt = tmp_path / 'tiny.pt'
    save_checkpoint(ckpt, build_model(ModelConfig(width=0.0625)))
    summary = evaluate.main(['--checkpoint', str(ckpt), '--split', '1', '--data-root', str(root),
                             '--out', str(tmp_path / 'eval'), '--device', 'cpu', '--quiet'])
    test_rows = splits.split_datasets(root, 1)['test'].rows
    assert summary['frames'] == len(test_rows) == 205 - 2 - 200
    rows = list(csv.DictReader(open(tmp_path / 'eval' / 'frames.csv')))
    # frame_index is the file's own index of each evaluated row (write_tensors: row + 5)
    assert [int(r['frame_index']) for r in rows] == [int(i) + 5 for i in test_rows]


@pytest.mark.slow
def test_random_crop_cuts_one_window_per_sample_and_trains(tmp_path):
    x = torch.arange(2 * 4 * 24 * 32, dtype=torch.float32).reshape(2, 4, 24, 32)
    gt = x[:, 0] * 10
    cx, cg = train.random_crop(x, gt, (16, 20))
    assert cx.shape == (2, 4, 16, 20) and cg.shape == (2, 16, 20)
    for i in range(2):                      # inputs and depth come from the same window
        y0, x0 = divmod(int(cx[i, 0, 0, 0]) - i * 4 * 24 * 32, 32)
        assert torch.equal(cx[i], x[i, :, y0:y0 + 16, x0:x0 + 20])
        assert torch.equal(cg[i], gt[i, y0:y0 + 16, x0:x0 + 20])
    assert train.random_crop(x, gt, None)[0] is x
    assert train.random_crop(x, gt, (64, 64))[0] is x
    write_synthetic(tmp_path / 't.h5', 6, 24, 32, seed=3)
    write_synthetic(tmp_path / 'v.h5', 2, 24, 32, seed=4)
    summary = train.main(_tiny_args(tmp_path, tmp_path / 'a', '--crop', '16', '24'))
    assert summary['global_step'] == 6 and summary['last_metrics']['frames'] == 2
    with pytest.raises(cli.UsageError, match='--crop'):
        train.parse_args(['--crop', '8', '8'])


def test_evaluate_families_groups_files_by_family(tmp_path):
    fams = train_script('evaluate_families')
    ckpt = tmp_path / 'tiny.pt'
    save_checkpoint(ckpt, build_model(ModelConfig(width=0.0625)), {})
    for name, seed in (('wall101', 1), ('wall102', 2), ('disc7', 3)):
        write_synthetic(tmp_path / f'{name}.h5', 3 + seed, 16, 24, seed=seed)
    files = [str(tmp_path / f'{n}.h5') for n in ('wall101', 'wall102', 'disc7')]
    out = fams.main(['--checkpoint', str(ckpt), '--data', *files, '--device', 'cpu',
                     '--quiet', '--out', str(tmp_path / 'o')])
    one = evaluate.main(['--checkpoint', str(ckpt), '--data', files[0], '--baseline',
                         '--device', 'cpu', '--quiet'])
    assert out['rows']['wall101']['mde_cm'] == pytest.approx(one['mde_cm'])
    wall = out['rows']['**wall** (all)']
    assert wall['frames'] == 4 + 5
    assert wall['mde_cm'] == pytest.approx((4 * one['mde_cm'] + 5 * out['rows']['wall102'][
        'mde_cm']) / 9)
    assert wall['ratio'] == pytest.approx(wall['mde_cm'] / wall['baseline_mde_cm'])
    assert '**disc** (all)' in out['rows']
    assert '| wall102 |' in (tmp_path / 'o' / 'table.md').read_text()
    with pytest.raises(cli.UsageError, match='nope.h5'):
        fams.main(['--checkpoint', str(ckpt), '--data', str(tmp_path / 'nope.h5')])
    with pytest.raises(cli.UsageError, match='overwrite'):
        fams.main(['--checkpoint', str(ckpt), '--data', files[0], '--out', str(tmp_path / 'o')])
