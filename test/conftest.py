"""Shared test set-up: isolate DDS traffic of this run (own domain id, localhost discovery)."""
import os
import random

# Every rclpy context and every subprocess started by the tests inherits these.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ['ROS_DOMAIN_ID'] = os.environ.get(
    'STEREOSPIKE_TEST_DOMAIN_ID', str(random.SystemRandom().randint(1, 100)))
