"""ONNX export (train/export.py, nn/export.py): a plain-step graph ONNX Runtime runs like torch."""
import numpy as np
import pytest
import torch

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

from stereospike_ros.nn import export  # noqa: E402
from stereospike_ros.nn.checkpoint import save_checkpoint  # noqa: E402
from stereospike_ros.nn.model import build_model  # noqa: E402
from support import train_script  # noqa: E402

H, W = 36, 52
# Every operator a StereoSpike graph may hold: convolutions, the spike step, skips, upsampling,
# the channel / readout selection and the shape arithmetic of a dynamic batch (no Resize).
PLAIN_OPS = {'Conv', 'GreaterOrEqual', 'Cast', 'Add', 'Gather', 'Slice', 'Shape',
             'Concat', 'Constant', 'Squeeze', 'Unsqueeze', 'Reshape'}


cli = train_script('export')


def _model(**kw):
    """A narrow spiking model with strong weights, so sparse counts make spikes in every layer."""
    torch.manual_seed(0)
    model = build_model(width=0.125, **kw)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(1.5) if name.endswith('bias') else p.mul_(8.0)
    return model.eval()


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp('ck') / 'snn.pt'
    save_checkpoint(path, _model(), {'epoch': 3})
    return path


@pytest.mark.slow
def test_cli_writes_a_plain_step_graph_that_matches_torch(checkpoint, tmp_path, capsys):
    out = tmp_path / 'snn.onnx'
    assert cli.main(['--checkpoint', str(checkpoint), '--out', str(out), '--height', str(H),
                     '--width', str(W), '--dynamic-batch']) == 0
    printed = capsys.readouterr().out
    assert 'max |diff| vs PyTorch' in printed and str(out) in printed
    graph = onnx.load(str(out))
    onnx.checker.check_model(graph)
    ops = [n.op_type for n in graph.graph.node]
    assert set(ops) <= PLAIN_OPS, set(ops) - PLAIN_OPS
    assert ops.count('GreaterOrEqual') == 13   # one step per spiking layer, nothing else
    assert [o.name for o in graph.graph.output] == list(export.ONNX_OUTPUTS)
    # Any batch size; every readout equals torch's, the finest first.
    model = _model()
    x = export.parity_input(3, 4, H, W, seed=7)
    sess = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    got = sess.run(None, {export.ONNX_INPUT: x})
    with torch.inference_mode():
        want = model(torch.from_numpy(x))
    assert len(want.spikes) == 13 and all(0 < float(s.mean()) < 1 for s in want.spikes)
    for g, w in zip(got, reversed(want.depths)):
        assert g.shape == (3, H, W)
        np.testing.assert_allclose(g, w.numpy(), atol=export.PARITY_TOLERANCE_M, rtol=0)
    assert np.std(got[0]) > 0


@pytest.mark.slow
def test_monocular_export_takes_the_left_channels(tmp_path):
    model = _model(variant='monocular')
    report = export.export_onnx(model, tmp_path / 'mono.onnx', H, W)
    assert report['input'] == [1, 2, H, W] and report['max_abs_diff_m'] <= 1e-3
    config, shape = export.model_info(export.session(tmp_path / 'mono.onnx'))
    assert config == model.config and shape == (1, 2, H, W)


@pytest.mark.slow
def test_existing_output_bad_name_and_bad_checkpoint_are_refused(checkpoint, tmp_path, capsys):
    out = tmp_path / 'm.onnx'
    out.write_bytes(b'keep')
    base = ['--checkpoint', str(checkpoint), '--height', str(H), '--width', str(W)]
    assert cli.main(base + ['--out', str(out)]) == 2
    assert out.read_bytes() == b'keep' and '--overwrite' in capsys.readouterr().err
    assert cli.main(base + ['--out', str(tmp_path / 'm.txt')]) == 2
    assert '.onnx' in capsys.readouterr().err and not (tmp_path / 'm.txt').exists()
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(b'not a checkpoint')
    assert cli.main(['--checkpoint', str(bad), '--out', str(out), '--overwrite']) == 1
    err = capsys.readouterr().err
    assert err.startswith('export.py: error: ') and str(bad) in err
    assert len(err.strip().splitlines()) == 1
    assert out.read_bytes() == b'keep'
    assert cli.main(base + ['--out', str(out), '--overwrite']) == 0
    assert out.stat().st_size > 1000 and not list(tmp_path.glob('.m.onnx.*'))


@pytest.mark.slow
def test_an_export_over_the_tolerance_is_not_written(tmp_path):
    """ONNX Runtime and torch round differently (far below 1e-3 m); a zero tolerance sees it."""
    out = tmp_path / 'strict.onnx'
    with pytest.raises(export.ExportError, match='differs from torch'):
        export.export_onnx(_model(), out, H, W, tolerance=0.0)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_gather_upsampling_reproduces_torch_nearest_exactly():
    """Every size pair the decoder can meet (ONNX Resize differs from torch at e.g. 26 -> 56)."""
    x = torch.arange(200, dtype=torch.float32)[None, None, None]
    for n_in in range(1, 140):
        for n_out in range(n_in, n_in * 3 + 8):
            want = torch.nn.functional.interpolate(x[..., :n_in], size=(1, n_out),
                                                   mode='nearest')[0, 0, 0].long()
            assert torch.equal(export.nearest_indices(n_in, n_out), want), (n_in, n_out)
