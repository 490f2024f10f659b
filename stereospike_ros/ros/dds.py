"""Fast DDS set-up for large event messages: the shipped profile and the variable that loads it.

Best-effort event messages of a few hundred KB are lost in the publisher's own process when its
shared-memory segment (512 KiB by default) cannot hold them; ``config/fastdds_large_data.xml``
gives every participant of the process a large segment (see the file and README). Fast DDS reads
the profile named by :data:`PROFILE_ENV` when the process creates its first participant, so it
must be in the environment before ``rclpy.init``. No rclpy import here (launch files use it).
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

#: The variable Fast DDS (2.x and 3.x) reads; FASTRTPS_DEFAULT_PROFILES_FILE is deprecated.
PROFILE_ENV = 'FASTDDS_DEFAULT_PROFILES_FILE'
PROFILE_NAME = 'fastdds_large_data.xml'
PACKAGE = 'stereospike'


def large_data_profile() -> Path | None:
    """The shipped profile: ``config/`` of this checkout, else the installed share folder."""
    here = Path(__file__).resolve().parents[2] / 'config' / PROFILE_NAME
    if here.is_file():
        return here
    try:
        from ament_index_python.packages import (PackageNotFoundError,
                                                 get_package_share_directory)
    except ImportError:
        return None
    try:
        installed = Path(get_package_share_directory(PACKAGE)) / 'config' / PROFILE_NAME
    except (PackageNotFoundError, ValueError):
        return None
    return installed if installed.is_file() else None


def use_large_data_profile(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Point :data:`PROFILE_ENV` at the shipped profile unless set; returns the one in effect.

    A value the user set (even empty) is kept: it is their choice of profile or of none.
    """
    environ = os.environ if environ is None else environ
    if PROFILE_ENV not in environ:
        profile = large_data_profile()
        if profile is not None:
            environ[PROFILE_ENV] = str(profile)
    return environ.get(PROFILE_ENV) or None


def large_data_env(base: dict | None = None) -> dict:
    """A copy of ``base`` (default: this environment) that loads the shipped profile."""
    env = dict(os.environ if base is None else base)
    profile = large_data_profile()
    if profile is None:
        raise FileNotFoundError(f'{PROFILE_NAME} is neither in this checkout nor installed')
    env[PROFILE_ENV] = str(profile)
    return env
