"""Checkpoints: round trip, weights_only loading, reference state_dicts, clear errors."""
import os

import pytest
import torch

from stereospike_ros.nn.checkpoint import (FORMAT, CheckpointError, load_checkpoint,
                                           load_weights_into, save_checkpoint)
from stereospike_ros.nn.model import ModelConfig, StereoSpike, build_model


def test_round_trip_with_meta_and_resume_state(tmp_path):
    torch.manual_seed(0)
    model = build_model(width=0.25, variant='monocular', surrogate='atan')
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    model(torch.rand(1, 4, 32, 40) * 3).depths[-1].mean().backward()
    opt.step()
    meta = {'epoch': 3, 'step': 17, 'metrics': {'mde_cm': 12.5}, 'optimizer': opt.state_dict(),
            'rng': {'torch': torch.get_rng_state()}, 'args': {'lr': 2e-4, 'out': 'runs/x'}}
    path = tmp_path / 'sub' / 'ck.pt'
    save_checkpoint(path, model, meta)
    assert not [p for p in path.parent.iterdir() if p.name != 'ck.pt']  # no temp files left
    raw = torch.load(path, weights_only=True)
    assert raw['format'] == FORMAT and raw['model_config']['variant'] == 'monocular'
    loaded, meta2 = load_checkpoint(path)
    assert loaded.config == model.config and not loaded.training
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert meta2['epoch'] == 3 and meta2['metrics']['mde_cm'] == 12.5
    opt2 = torch.optim.Adam(loaded.parameters(), lr=1.0)
    opt2.load_state_dict(meta2['optimizer'])
    assert opt2.param_groups[0]['lr'] == 2e-4
    x = torch.rand(2, 4, 32, 40) * 3
    torch.testing.assert_close(model.eval().predict(x), loaded.predict(x))


def test_plain_reference_state_dict_loads_as_binocular(tmp_path):
    ref = StereoSpike()
    path = tmp_path / 'reference.pth'
    torch.save(ref.state_dict(), path)
    model, meta = load_checkpoint(path)
    assert model.config.variant == 'binocular' and model.config.width == 1.0
    assert torch.equal(model.state_dict()['conv4.0.weight'], ref.state_dict()['conv4.0.weight'])
    assert 'reference' in meta['source']


def test_wrong_variant_and_shapes_are_clear_errors(tmp_path):
    mono = build_model(variant='monocular', width=0.25)
    path = tmp_path / 'mono.pt'
    save_checkpoint(path, mono, {})
    with pytest.raises(CheckpointError, match='monocular.*expected binocular'):
        load_checkpoint(path, expect_variant='binocular')
    bino = build_model(width=0.25)
    with pytest.raises(CheckpointError, match=r'bottom\.0\.weight has shape \(8, 2, 5, 5\)'):
        load_weights_into(bino, path)
    wide = build_model(width=0.5)
    with pytest.raises(CheckpointError, match='conv1.0.weight|bottom.0.weight'):
        load_weights_into(wide, tmp_path / 'mono.pt')
    partial = {k: v for k, v in bino.state_dict().items() if not k.startswith('predict')}
    torch.save(partial, tmp_path / 'partial.pth')
    with pytest.raises(CheckpointError, match='missing keys'):
        load_checkpoint(tmp_path / 'partial.pth')


def test_bad_paths_and_files(tmp_path):
    with pytest.raises(CheckpointError, match='does not exist'):
        load_checkpoint(tmp_path / 'nope.pt')
    with pytest.raises(CheckpointError, match='not a regular file'):
        load_checkpoint(tmp_path)
    junk = tmp_path / 'junk.pt'
    junk.write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError, match='not a loadable checkpoint'):
        load_checkpoint(junk)
    torch.save({'format': 'other-v9'}, tmp_path / 'other.pt')
    with pytest.raises(CheckpointError, match='unknown checkpoint format'):
        load_checkpoint(tmp_path / 'other.pt')
    torch.save([1, 2, 3], tmp_path / 'list.pt')
    with pytest.raises(CheckpointError, match='not a stereospike checkpoint'):
        load_checkpoint(tmp_path / 'list.pt')


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / 'evil.pt'
    torch.save({'format': FORMAT, 'payload': _Evil()}, path)
    with pytest.raises(CheckpointError, match='not a loadable checkpoint'):
        load_checkpoint(path)


def test_export_for_inference_drops_resume_state_only(tmp_path):
    from stereospike_ros.nn.checkpoint import export_for_inference
    model = build_model(ModelConfig(width=0.0625))
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(1, 4, 32, 48)).depths[-1].mean().backward()
    opt.step()
    meta = {'epoch': 3, 'metrics': {'mde': 0.5}, 'optimizer': opt.state_dict(),
            'rng': {'python': [1, 2]}, 'position': 7, 'args': {'lr': 1e-3}}
    save_checkpoint(tmp_path / 'train.pt', model, meta)
    kept = export_for_inference(tmp_path / 'train.pt', tmp_path / 'infer.pt')
    assert kept == {'epoch': 3, 'metrics': {'mde': 0.5}, 'args': {'lr': 1e-3}}
    assert (tmp_path / 'infer.pt').stat().st_size < (tmp_path / 'train.pt').stat().st_size
    loaded, loaded_meta = load_checkpoint(tmp_path / 'infer.pt')
    assert loaded_meta == kept
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
