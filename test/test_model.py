"""StereoSpike model: reference parameter counts/names, IF equivalence, batching, variants."""
import math

import pytest
import torch
import torch.nn.functional as F

from stereospike_ros.nn.model import ModelConfig, StereoSpike, build_model, count_parameters

REFERENCE_KEYS = (
    ['bottom.0.weight'] + [f'conv{i}.0.weight' for i in range(1, 5)]
    + [f'bottleneck.{b}.conv{c}.0.weight' for b in (0, 1) for c in (1, 2)]
    + [f'deconv{k}.0.up.1.weight' for k in (4, 3, 2, 1)]
    + [f'predict_depth{k}.0.up.1.{w}' for k in (4, 3, 2, 1) for w in ('weight', 'bias')])


def _counts(b=2, h=64, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4, (b, 4, h, w), generator=g).float()


def test_reference_parameter_counts_and_state_dict_layout():
    model = StereoSpike()
    assert count_parameters(model) == 18_148_708           # the published network
    sd = model.state_dict()
    assert list(sd) == REFERENCE_KEYS
    assert tuple(sd['bottom.0.weight'].shape) == (32, 4, 5, 5)
    assert tuple(sd['deconv4.0.up.1.weight'].shape) == (256, 512, 5, 5)
    assert tuple(sd['predict_depth1.0.up.1.weight'].shape) == (1, 32, 3, 3)
    assert len(list(model.buffers())) == 0
    mono = StereoSpike(ModelConfig(variant='monocular'))
    assert count_parameters(mono) == 18_147_108
    assert tuple(mono.state_dict()['bottom.0.weight'].shape) == (32, 2, 5, 5)


def test_sizes_follow_reference_table_at_full_resolution():
    model = build_model(width=1 / 32, neuron_backend='torch').eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 4, 260, 346))
    sizes = [tuple(s.shape[-2:]) for s in out.spikes]
    assert sizes[:5] == [(260, 346), (130, 173), (65, 87), (33, 44), (17, 22)]
    assert sizes[-4:] == [(33, 44), (65, 87), (130, 173), (260, 346)]
    assert all(tuple(d.shape) == (1, 260, 346) for d in out.depths)


def _manual_forward(model, x):
    """Independent functional forward: every IF layer as heaviside(conv(x) - 1)."""
    sd = model.state_dict()

    def conv_if(key, t, stride, pad):
        return (F.conv2d(t, sd[key], stride=stride, padding=pad) >= 1).float()

    def up(key, t, size, k, spike=True, bias=None):
        t = F.interpolate(t, size=(size[0] + k - 1, size[1] + k - 1), mode='nearest')
        y = F.conv2d(t, sd[key + '.weight'], bias)
        return (y >= 1).float() if spike else y

    s0 = conv_if('bottom.0.weight', x, 1, 2)
    s1 = conv_if('conv1.0.weight', s0, 2, 2)
    s2 = conv_if('conv2.0.weight', s1, 2, 2)
    s3 = conv_if('conv3.0.weight', s2, 2, 2)
    y = conv_if('conv4.0.weight', s3, 2, 2)
    for b in (0, 1):
        a = conv_if(f'bottleneck.{b}.conv1.0.weight', y, 1, 1)
        y = conv_if(f'bottleneck.{b}.conv2.0.weight', a, 1, 1) + y
    u4 = up('deconv4.0.up.1', y, s3.shape[-2:], 5) + s3
    u3 = up('deconv3.0.up.1', u4, s2.shape[-2:], 5) + s2
    u2 = up('deconv2.0.up.1', u3, s1.shape[-2:], 5) + s1
    u1 = up('deconv1.0.up.1', u2, s0.shape[-2:], 5) + s0
    full = x.shape[-2:]
    preds = [up(f'predict_depth{k}.0.up.1', u, full, 3, False, sd[f'predict_depth{k}.0.up.1.bias'])
             for k, u in ((4, u4), (3, u3), (2, u2), (1, u1))]
    return torch.cumsum(torch.stack([p[:, 0] for p in preds]), 0)


def _scaled_model(backend):
    torch.manual_seed(1)
    model = build_model(width=0.25, neuron_backend=backend).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0)  # enough drive that every layer fires
    return model


@pytest.mark.parametrize('backend', ['spikingjelly', 'torch'])
def test_if_layers_equal_heaviside_of_conv_minus_threshold(backend):
    model = _scaled_model(backend)
    x = _counts()
    with torch.no_grad():
        out = model(x)
    rates = [float(s.mean()) for s in out.spikes]
    assert all(0.0 < r < 1.0 for r in rates[:5]), rates
    assert all(set(torch.unique(s).tolist()) <= {0.0, 1.0} for s in out.spikes)
    expected = _manual_forward(model, x)
    for got, want in zip(out.depths, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_batch_equals_per_sample_and_repeated_calls_are_stateless():
    model = _scaled_model('spikingjelly')
    x = _counts(b=3)
    with torch.no_grad():
        batch = model.predict(x)
        single = torch.cat([model.predict(x[i:i + 1]) for i in range(3)])
        again = model.predict(x)
    torch.testing.assert_close(batch, single, rtol=0, atol=1e-5)
    assert torch.equal(batch, again)
    assert not batch.requires_grad


def test_backends_agree_in_forward_and_surrogate_gradients():
    for surrogate in ('reference', 'atan', 'sigmoid'):
        torch.manual_seed(0)
        a = build_model(width=0.125, surrogate=surrogate, neuron_backend='spikingjelly')
        b = build_model(width=0.125, surrogate=surrogate, neuron_backend='torch')
        b.load_state_dict(a.state_dict())
        x = _counts(b=1, h=40, w=48)
        grads = []
        for m in (a, b):
            m.zero_grad()
            out = m(x)
            sum(d.pow(2).mean() for d in out.depths).backward()
            grads.append([p.grad.clone() for p in m.parameters()])
        for ga, gb in zip(*grads):
            torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-6)
        assert any(float(g.abs().sum()) > 0 for g in grads[0][:5])  # surrogate reaches encoder


def test_reference_surrogates_sigmoid_only_in_sew_blocks():
    model = build_model(neuron_backend='torch', width=0.125)
    assert model.bottleneck[0].conv1[1].kind == 'sigmoid'
    assert model.bottleneck[1].conv2[1].alpha == 4.0
    assert model.conv1[1].kind == 'atan' and model.conv1[1].alpha == 2.0
    assert model.deconv4[0].up[2].kind == 'atan'
    atan = build_model(neuron_backend='torch', width=0.125, surrogate='atan')
    assert atan.bottleneck[0].conv1[1].kind == 'atan'


def test_cumulative_readouts_and_shapes_for_odd_sizes():
    model = _scaled_model('torch')
    x = _counts(b=1, h=37, w=51)
    with torch.no_grad():
        out = model(x)
    assert all(tuple(d.shape) == (1, 37, 51) for d in out.depths)
    p3 = out.depths[1] - out.depths[0]
    assert float(p3.abs().max()) > 0  # readouts are different partial sums


def test_monocular_uses_left_channels_and_accepts_two():
    torch.manual_seed(0)
    model = build_model(variant='monocular', width=0.25, neuron_backend='torch').eval()
    x = _counts()
    x2 = x.clone()
    x2[:, 2:] = 99.0  # right camera must be ignored
    torch.testing.assert_close(model.predict(x), model.predict(x2))
    torch.testing.assert_close(model.predict(x), model.predict(x[:, :2]))
    with pytest.raises(ValueError, match='input channels'):
        build_model(width=0.25).predict(x[:, :2])


def test_ann_variant_and_width_multiplier():
    ann = build_model(network='ann', activation='tanh', width=0.25)
    out = ann(_counts(h=32, w=40))
    assert out.spikes == [] and tuple(out.depths[-1].shape) == (2, 32, 40)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in ann.modules())
    assert all(m.bias is not None for m in ann.modules() if isinstance(m, torch.nn.Conv2d))
    tiny = build_model(width=0.001)
    assert tiny.config.channels() == (1, 1, 1, 1, 1)
    assert count_parameters(build_model(width=0.5)) < count_parameters(StereoSpike()) / 3


def test_config_validation_and_round_trip():
    cfg = ModelConfig(variant='monocular', width=0.5, surrogate='atan')
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    for bad in ({'variant': 'trinocular'}, {'width': 0}, {'width': math.inf},
                {'surrogate': 'relu'}):
        with pytest.raises(ValueError):
            ModelConfig(**bad)
    with pytest.raises(ValueError, match='unknown'):
        ModelConfig.from_dict({'depth': 3})
