"""Shared test set-up: isolated DDS traffic for this run, the large-data Fast DDS profile in
every process (as the launch files do), and the fixtures several modules use.

Helpers that are not fixtures live in ``test/support/`` (data builders, ROS plumbing, the
loader of ``train/*.py``).
"""
import os
import random

import pytest

from stereospike_ros.ros import dds

# Every rclpy context and every subprocess started by the tests inherits these.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ['ROS_DOMAIN_ID'] = os.environ.get(
    'STEREOSPIKE_TEST_DOMAIN_ID', str(random.SystemRandom().randint(1, 100)))
dds.use_large_data_profile()      # before any rclpy.init of this process


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory) -> str:
    """A randomly initialised binocular model at 1/32 width, saved in our checkpoint format.

    Positive biases keep its depth positive (few NaN pixels) and stronger weights make sparse
    events spike, so its output depends on the events.
    """
    import torch

    from stereospike_ros.nn.checkpoint import save_checkpoint
    from stereospike_ros.nn.model import ModelConfig, build_model
    with torch.random.fork_rng():
        torch.manual_seed(3)
        model = build_model(ModelConfig(width=1 / 32))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith('bias'):
                param.fill_(2.0)
            else:
                param.mul_(5.0)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pt'
    save_checkpoint(path, model, {'note': 'test'})
    return str(path)
