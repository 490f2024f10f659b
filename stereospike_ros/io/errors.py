"""The base class of every expected error of the package (bad files, bad options, bad data).

Each module raises its own subclass whose message names the file and the problem; the tools
answer these (and ``OSError``) with one ``error:`` line, while any other exception is a bug.
"""
from __future__ import annotations


class InputError(ValueError):
    """A problem with the user's input (a file, an option, the data), not a bug."""
