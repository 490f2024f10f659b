"""Data-parallel training with torchrun on the CPU (gloo): 2 processes against 1 process."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from stereospike_ros.nn.checkpoint import read_checkpoint
from stereospike_ros.offline import cli
from support import ROOT, train_script
from support.data import write_synthetic

train = train_script('train')


def _torchrun(script, *args, timeout=120):
    env = {k: v for k, v in os.environ.items()
           if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    env.update(OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(ROOT / 'test'), env.get('PYTHONPATH', '')]))
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node',
           '2', str(script), *map(str, args)]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _losses(run):
    with open(run / 'train_log.csv') as f:
        return [float(row['loss']) for row in csv.DictReader(f)]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ddp')
    write_synthetic(tmp / 'train.h5', 6, seed=1)
    write_synthetic(tmp / 'val.h5', 2, seed=2)
    args = ['--train-files', tmp / 'train.h5', '--val-files', tmp / 'val.h5', '--width',
            '0.125', '--epochs', '1', '--max-steps-per-epoch', '3', '--lr', '1e-3',
            '--milestones', '100', '--l1-weight', '1', '--spike-penalty', '0.1',
            '--no-tensorboard', '--quiet', '--seed', '5']
    return tmp, args


@pytest.mark.slow
def test_two_processes_train_like_one_process_with_the_global_batch(data):
    tmp, args = data
    worker = ROOT / 'test' / 'support' / 'ddp_train_worker.py'
    printed = _torchrun(worker, tmp, *args, '--batch-size', '1', '--out', tmp / 'ddp')
    assert 'world_size 2' in printed
    ranks = [torch.load(tmp / f'rank{r}.pt', weights_only=True) for r in (0, 1)]
    # The ranks hold the same weights, bit for bit, after the steps.
    assert ranks[0]['state'].keys() == ranks[1]['state'].keys()
    for k, v in ranks[0]['state'].items():
        assert torch.equal(v, ranks[1]['state'][k]), k
    assert ranks[0]['summary']['world_size'] == 2 and ranks[0]['summary']['global_step'] == 3
    summary = train.json.loads((tmp / 'ddp' / 'summary.json').read_text())
    assert summary['world_size'] == 2
    ddp = read_checkpoint(tmp / 'ddp' / 'last.pt')
    assert ddp['meta']['world_size'] == 2
    for k, v in ranks[0]['state'].items():
        assert torch.equal(v, ddp['state_dict'][k]), k
    # One process, batch 2 = the global batch: the same frames per step, the same pooled loss.
    one = train.main([str(a) for a in args] + ['--batch-size', '2', '--out', str(tmp / 'one')])
    assert one['world_size'] == 1 and one['global_step'] == 3
    single = read_checkpoint(tmp / 'one' / 'last.pt')['state_dict']
    np.testing.assert_allclose(_losses(tmp / 'ddp'), _losses(tmp / 'one'), rtol=1e-4)
    torch.manual_seed(5)
    init = train.build_model(width=0.125)   # the start of both runs (seed 5)
    moved = diff = 0.0
    for k, v in single.items():
        moved = max(moved, float((v - init.state_dict()[k]).abs().max()))
        diff = max(diff, float((v - ddp['state_dict'][k]).abs().max()))
    print(f'largest weight change {moved:.3g}, largest difference 1 vs 2 processes {diff:.3g}')
    assert 1e-3 < moved < 0.1 and diff < 0.01 * moved


@pytest.mark.slow
def test_resume_of_a_two_process_run_is_exact(data):
    tmp, args = data
    run = tmp / 'resumed'
    _torchrun(ROOT / 'train' / 'train.py', *args, '--batch-size', '1', '--out', run,
              '--stop-after-steps', '2')
    assert read_checkpoint(run / 'last.pt')['meta']['position'] == 2
    _torchrun(ROOT / 'train' / 'train.py', *args, '--batch-size', '1', '--out', run,
              '--resume', run / 'last.pt')
    whole = read_checkpoint(tmp / 'ddp' / 'last.pt')   # the uninterrupted run of the test above
    resumed = read_checkpoint(run / 'last.pt')
    for k, v in whole['state_dict'].items():
        assert torch.equal(v, resumed['state_dict'][k]), k
    assert _losses(run) == _losses(tmp / 'ddp')
    with pytest.raises(cli.UsageError, match='same world size'):
        train.main([str(a) for a in args] + ['--out', str(tmp / 'other'), '--resume',
                                             str(run / 'last.pt')])


def test_epoch_order_keeps_the_one_process_shuffle_and_deals_it_to_the_ranks():
    for n, seed, epoch in ((7, 2021, 0), (10, 5, 3), (1, 0, 9)):
        g = torch.Generator().manual_seed(seed * 1000 + epoch)   # the order before torchrun
        before = torch.randperm(n, generator=g).tolist()
        assert train.epoch_order(n, seed, epoch) == before       # old checkpoints resume alike
        shares = [train.epoch_order(n, seed, epoch, rank, 2) for rank in (0, 1)]
        padded = before + before[:len(before) % 2]
        assert shares == [padded[0::2], padded[1::2]]            # step i: frames 2i and 2i+1
