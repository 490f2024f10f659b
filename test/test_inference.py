"""Predictor: checkpoint or model input, uint16 counts in, float32 depth out, thread safety."""
import threading

import numpy as np
import pytest
import torch

from stereospike_ros.nn.checkpoint import CheckpointError, save_checkpoint
from stereospike_ros.nn.inference import Predictor, resolve_device
from stereospike_ros.nn.model import build_model


def _model(**kw):
    torch.manual_seed(0)
    model = build_model(width=0.25, **kw)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0)
    return model.eval()


def _counts(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 5, shape).astype(np.uint16)


def test_predict_matches_model_for_single_and_batch(tmp_path):
    model = _model()
    path = tmp_path / 'ck.pt'
    save_checkpoint(path, model, {'epoch': 1})
    pred = Predictor(str(path), device='cpu', warmup_shape=(32, 40))
    assert pred.meta['epoch'] == 1 and pred.device.type == 'cpu'
    assert pred.model.config.neuron_backend == 'torch'  # stateless fast neurons
    counts = _counts((3, 4, 32, 40))
    out = pred.predict(counts)
    assert out.dtype == np.float32 and out.shape == (3, 32, 40)
    want = model.predict(torch.from_numpy(counts.astype(np.float32))).numpy()
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    one = pred.predict(counts[1])
    assert one.shape == (32, 40)
    np.testing.assert_allclose(one, out[1], rtol=1e-5, atol=1e-5)
    assert np.abs(out).max() > 0


def test_monocular_predictor_takes_four_channels():
    pred = Predictor(model=_model(variant='monocular'), device='auto', warmup_shape=None)
    counts = _counts((4, 24, 32))
    right_changed = counts.copy()
    right_changed[2:] = 7
    np.testing.assert_array_equal(pred.predict(counts), pred.predict(right_changed))


def test_bad_inputs_raise_clear_errors(tmp_path):
    pred = Predictor(model=_model(), device='cpu', warmup_shape=None)
    with pytest.raises(ValueError, match='shape'):
        pred.predict(np.zeros((4, 8), np.uint16))
    with pytest.raises(ValueError, match='4 channels'):
        pred.predict(np.zeros((2, 16, 16), np.uint16))
    with pytest.raises(ValueError, match='NaN'):
        pred.predict(np.full((4, 16, 16), np.nan, np.float32))
    with pytest.raises(ValueError, match='not both'):
        Predictor(str(tmp_path / 'x.pt'), model=_model())
    with pytest.warns(UserWarning, match='untrained'):
        untrained = Predictor(device='cpu', warmup_shape=None)
    assert untrained.untrained and untrained.predict(np.zeros((4, 16, 24), np.uint16)).shape \
        == (16, 24)
    with pytest.raises(CheckpointError, match='does not exist'):
        Predictor(str(tmp_path / 'missing.pt'))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            resolve_device('cuda')


def test_concurrent_calls_are_serialised_and_correct():
    pred = Predictor(model=_model(), device='cpu', warmup_shape=None)
    inputs = [_counts((4, 24, 32), seed=i) for i in range(4)]
    expected = [pred.predict(c) for c in inputs]
    results = {}

    def work(i):
        results[i] = pred.predict(inputs[i])
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_array_equal(results[i], expected[i])


@pytest.mark.slow
def test_onnxruntime_backend_matches_torch_within_a_millimetre(tmp_path):
    pytest.importorskip('onnxruntime')
    from stereospike_ros.nn import export
    model = _model()
    path = tmp_path / 'ck.pt'
    save_checkpoint(path, model, {'epoch': 2})
    eager = Predictor(str(path), device='cpu', warmup_shape=None)
    fast = Predictor(str(path), device='cpu', warmup_shape=(32, 40), backend='onnxruntime')
    assert fast.backend == 'onnxruntime' and fast.meta['epoch'] == 2
    assert fast.onnx_max_diff_m <= export.PARITY_TOLERANCE_M   # checked when exported
    counts = _counts((3, 4, 32, 40))
    want = eager.predict(counts)
    got = fast.predict(counts)
    assert got.dtype == np.float32 and got.shape == (3, 32, 40) and np.std(want) > 0
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=0)
    np.testing.assert_allclose(fast.predict(counts[2]), want[2], atol=1e-3, rtol=0)
    other = _counts((2, 4, 24, 36), seed=5)                   # a new size: exported on first use
    np.testing.assert_allclose(fast.predict(other), eager.predict(other), atol=1e-3, rtol=0)
    # An exported file (batch 1, fixed size) runs too, one window at a time.
    export.export_onnx(model, tmp_path / 'm.onnx', 32, 40)
    from_file = Predictor(str(tmp_path / 'm.onnx'), device='cpu', warmup_shape=(32, 40),
                          backend='onnxruntime')
    assert from_file.model is None and from_file.config == model.config
    np.testing.assert_allclose(from_file.predict(counts), want, atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match='takes 32x40 counts, got 24x36'):
        from_file.predict(other)
    with pytest.raises(ValueError, match='backend onnxruntime'):
        Predictor(str(tmp_path / 'm.onnx'), device='cpu', warmup_shape=None)
    with pytest.raises(ValueError, match='does not exist'):
        Predictor(str(tmp_path / 'missing.onnx'), backend='onnxruntime', warmup_shape=None)
    with pytest.raises(ValueError, match='tensorrt'):
        Predictor(model=model, backend='tensorrt', warmup_shape=None)


@pytest.mark.slow
def test_onnxruntime_monocular_predictor_takes_four_channels():
    pytest.importorskip('onnxruntime')
    model = _model(variant='monocular')
    eager = Predictor(model=model, device='cpu', warmup_shape=None)
    fast = Predictor(model=model, device='cpu', warmup_shape=None, backend='onnxruntime')
    counts = _counts((4, 24, 32))
    right_changed = counts.copy()
    right_changed[2:] = 7
    np.testing.assert_allclose(fast.predict(counts), eager.predict(counts), atol=1e-3, rtol=0)
    np.testing.assert_array_equal(fast.predict(counts), fast.predict(right_changed))
    np.testing.assert_allclose(fast.predict(counts[:2]), eager.predict(counts), atol=1e-3, rtol=0)
