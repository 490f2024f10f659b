"""Command-line plumbing of every tool: one-line errors, exit codes, safe output paths.

Exit status: 0 done; 1 the work failed (a file's contents, degenerate data, a failed write);
2 the command line cannot be run as typed (options, values and paths, all checked before any
work). Every expected problem is one line ``PROG: error: MESSAGE`` on stderr; only bugs give a
traceback. Outputs are never replaced without ``--overwrite``, an input is never written over,
and folders a tool creates are removed again when it fails before writing into them.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NoReturn, Sequence

from stereospike_ros.io.errors import InputError

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

Inputs = Iterable[tuple[str, Any]]   # (flag, path) pairs of a tool's input paths


class UsageError(InputError):
    """The command line cannot be run as typed (exit status 2)."""


class ToolError(InputError):
    """The command line is fine but the work cannot give a meaningful result (exit status 1)."""


# ------------------------------------------------------------------------------- reporting

def one_line(message: object) -> str:
    """``message`` on a single line (line breaks of multi-line texts become '; ')."""
    parts = [part.strip() for part in str(message).splitlines() if part.strip()]
    return '; '.join(parts) or type(message).__name__


def report(prog: str, kind: str, message: object) -> None:
    """Print ``PROG: KIND: MESSAGE`` as one line on stderr (kind: 'error', 'warning', 'note')."""
    print(f'{prog}: {kind}: {one_line(message)}', file=sys.stderr, flush=True)


def run(main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None,
        prog: str | None = None) -> int:
    """Call ``main(argv)`` and turn expected failures into one error line and an exit status.

    :class:`UsageError` -> 2; any other :class:`InputError` (the package's errors, each naming
    its file) or ``OSError`` -> 1; Ctrl-C -> 130. An integer result is the exit status.
    """
    prog = prog or Path(sys.argv[0]).name
    try:
        result = main(argv)
    except UsageError as exc:
        report(prog, 'error', exc)
        return EXIT_USAGE
    except (InputError, OSError) as exc:
        report(prog, 'error', exc)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        report(prog, 'error', 'interrupted')
        return EXIT_INTERRUPTED
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return EXIT_OK


class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` whose mistakes raise :class:`UsageError` (one line via :func:`run`)."""

    def error(self, message: str) -> NoReturn:
        """argparse's hook for every command-line mistake: raise, do not print and exit."""
        raise UsageError(f'{message} (see --help)')


# ------------------------------------------------------------------------------- option values

def number(kind: type = float, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> Callable[[str], Any]:
    """argparse ``type``: a finite ``kind`` (int or float) within ``[low, high]``.

    ``low_open`` / ``high_open`` make a bound exclusive (a learning rate is ``> 0``).
    """
    noun = 'an integer' if kind is int else 'a number'

    def parse(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f'{text!r} is not {noun}') from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f'{text!r} is not a finite number')
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f'must be {">" if low_open else ">="} {low:g}, '
                                             f'not {text}')
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f'must be {"<" if high_open else "<="} {high:g}, '
                                             f'not {text}')
        return value

    parse.__name__ = kind.__name__
    return parse


positive = number(float, 0, low_open=True)
non_negative = number(float, 0)
count = number(int, 0)
positive_count = number(int, 1)


def device(text: str) -> str:
    """argparse ``type``: a torch device this machine has ('auto', 'cpu', 'cuda', 'cuda:N')."""
    from stereospike_ros.nn.inference import resolve_device
    try:
        resolve_device(text)
    except (ValueError, RuntimeError) as exc:
        raise argparse.ArgumentTypeError(one_line(exc)) from None
    return text


def plain_name(text: str) -> str:
    """argparse ``type``: a file-name part that stays in its folder (no separators, no dot)."""
    bad = (not text or text.startswith('.') or '/' in text or os.sep in text or '\0' in text
           or (os.altsep is not None and os.altsep in text))
    if bad:
        raise argparse.ArgumentTypeError(f'{text!r} must be a plain name (no folders, not '
                                         f'starting with a dot)')
    return text


def option_name(parser: argparse.ArgumentParser, dest: str) -> str:
    """The long flag of ``dest`` in ``parser`` ('--render-hz' for 'render_hz')."""
    for action in parser._actions:
        if action.dest == dest and action.option_strings:
            return max(action.option_strings, key=len)
    return dest


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                      config_dest: str = 'config') -> argparse.Namespace:
    """Parse ``argv``; a YAML ``--config`` file supplies defaults that the command line overrides.

    The file's keys are option names (``lr``, ``max-val-frames`` or ``max_val_frames``); its
    values go through the same checks as typed options, and any mistake names the file.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    path = getattr(args, config_dest, None)
    if not path:
        return args
    tokens = config_tokens(parser, path, config_dest)
    try:
        parser.parse_args(tokens)
    except UsageError as exc:
        raise UsageError(f'--config {path}: {exc}') from None
    return parser.parse_args(tokens + argv)


def config_tokens(parser: argparse.ArgumentParser, path: str | os.PathLike,
                  config_dest: str = 'config') -> list[str]:
    """Command-line tokens equivalent to the YAML mapping in ``path`` (checked key by key)."""
    import yaml
    where = f'--config {path}'
    p = Path(path)
    if not p.is_file():
        raise UsageError(f'{where}: no such file')
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f'line {mark.line + 1}, column {mark.column + 1}: ' if mark else ''
        raise UsageError(f'{where}: not valid YAML ({at}{exc.problem})') from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f'{where}: not valid YAML ({one_line(exc)})') from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise UsageError(f'{where}: expected a mapping of option names to values, '
                         f'got {type(data).__name__}')
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest != 'help'}
    unknown = [k for k in data if str(k).replace('-', '_') not in actions
               or str(k).replace('-', '_') == config_dest]
    if unknown:
        raise UsageError(f'{where}: unknown options {", ".join(map(str, unknown))}')
    tokens: list[str] = []
    for key, value in data.items():
        action = actions[str(key).replace('-', '_')]
        flag = max(action.option_strings, key=len)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if not isinstance(value, bool):
                raise UsageError(f'{where}: {key} must be true or false, not {value!r}')
            if value == isinstance(action, argparse._StoreTrueAction):
                tokens.append(flag)
            continue
        if value is None:
            raise UsageError(f'{where}: {key} has no value')
        if action.nargs in ('+', '*') or isinstance(action.nargs, int):
            values = value if isinstance(value, list) else [value]
            tokens += [flag] + [str(v) for v in values]
        elif isinstance(value, (list, dict)):
            raise UsageError(f'{where}: {key} takes one value, not {value!r}')
        else:
            tokens.append(f'{flag}={value}')
    return tokens


# ------------------------------------------------------------------------------- paths

def _same(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (existing or not)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def existing_file(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a Path when it is a readable regular file, else a :class:`UsageError`."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f'{flag} {path}: is a folder, not a file')
    if not p.is_file():
        raise UsageError(f'{flag} {path}: no such file')
    if not os.access(p, os.R_OK):
        raise UsageError(f'{flag} {path}: not readable (permission denied)')
    return p


def existing_path(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a Path when it exists (file or folder), else a :class:`UsageError`."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f'{flag} {path}: no such file or folder')
    if not os.access(p, os.R_OK):
        raise UsageError(f'{flag} {path}: not readable (permission denied)')
    return p


def names_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` means a folder: it is one, or it is written with a trailing separator."""
    text = os.fspath(path)
    return Path(text).is_dir() or text.endswith(('/', os.sep))


def _check_location(folder: Path, flag: str, path: object) -> None:
    """The nearest existing ancestor of ``folder`` must be a writable folder."""
    q = folder.absolute()
    while not q.exists() and q != q.parent:
        q = q.parent
    if not q.is_dir():
        raise UsageError(f'{flag} {path}: {q} is not a folder')
    if not os.access(q, os.W_OK | os.X_OK):
        raise UsageError(f'{flag} {path}: cannot write in {q} (permission denied)')


def _check_not_input(path: Path, flag: str, inputs: Inputs) -> None:
    for in_flag, in_path in inputs:
        if in_path is not None and str(in_path) != 'identity' and _same(path, in_path):
            raise UsageError(f'{flag} {path}: is the input {in_flag}; a tool never writes '
                             f'over its own input')


def output_file(path: str | os.PathLike, *, overwrite: bool, flag: str = '--out',
                inputs: Inputs = ()) -> Path:
    """Check an output file before any work: a file name, not an input, new unless overwriting.

    Missing folders on the way are allowed (the writer creates them), an unwritable place is not.
    """
    p = Path(path)
    if names_folder(path):
        raise UsageError(f'{flag} {path}: is a folder; name a file')
    _check_not_input(p, flag, inputs)
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise UsageError(f'{flag} {path}: exists; pass --overwrite to replace it')
    _check_location(p.parent, flag, path)
    return p


def output_dir(path: str | os.PathLike, products: Iterable[str], *, overwrite: bool,
               flag: str = '--out', inputs: Inputs = ()) -> list[Path]:
    """Check an output folder before any work; returns the products (glob patterns) it holds.

    The folder may exist and hold other files; the tool's own products in it are replaced only
    with ``--overwrite``, and never when one of them is an input.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f'{flag} {path}: is a file; name a folder')
    existing: list[Path] = []
    if p.is_dir():
        for pattern in products:
            existing += sorted(q for q in p.glob(pattern) if q not in existing)
    for q in existing:
        _check_not_input(q, flag, inputs)
    if existing and not overwrite:
        names = ', '.join(q.name for q in existing[:4]) + (' ...' if len(existing) > 4 else '')
        raise UsageError(f'{flag} {path}: already holds {names}; pass --overwrite to replace '
                         f'{"it" if len(existing) == 1 else "them"} or choose another folder')
    _check_location(p, flag, path)
    return existing


@contextlib.contextmanager
def made_dirs(path: str | os.PathLike) -> Iterator[Path]:
    """Create folder ``path`` and missing parents; if the block fails, remove those left empty."""
    p = Path(path)
    missing = []
    q = p.absolute()
    while not q.exists() and q != q.parent:
        missing.append(q)
        q = q.parent
    p.mkdir(parents=True, exist_ok=True)
    try:
        yield p
    except BaseException:
        for folder in missing:            # deepest first; stop at the first non-empty one
            try:
                folder.rmdir()
            except OSError:
                break
        raise
