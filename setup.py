"""ament_python build of the stereospike ROS 2 package (also usable with plain setuptools)."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'stereospike'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=['stereospike_ros', 'stereospike_ros.*']),
    package_data={'stereospike_ros': ['checkpoints/*.pt', 'checkpoints/*.md']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='stereospike developers',
    maintainer_email='dev@stereospike.invalid',
    description='Event-camera stereo depth with a spiking neural network (StereoSpike) for ROS 2.',
    license='MIT',
    entry_points={
        'console_scripts': [
            'depth_node = stereospike_ros.depth_node:main',
            'play_bag = stereospike_ros.play:main',
            'export_events = stereospike_ros.export_events:main',
        ],
    },
)
