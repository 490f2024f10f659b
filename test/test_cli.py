"""The shared CLI plumbing: one-line errors and exit codes, option types, YAML config, outputs."""
import argparse
import os

import pytest

from stereospike_ros.io.tensors import TensorsError
from stereospike_ros.offline import cli


def _raiser(exc):
    def main(argv):
        raise exc
    return main


@pytest.mark.parametrize('exc, code', [
    (cli.UsageError('--lr: must be > 0'), 2),
    (TensorsError('a.h5: missing dataset'), 1),            # any package error: runtime
    (cli.ToolError('x.h5: nothing to evaluate'), 1),
    (FileNotFoundError(2, 'No such file or directory', 'gone.h5'), 1),
    (PermissionError(13, 'Permission denied', 'out.h5'), 1),
    (KeyboardInterrupt(), 130),
])
def test_run_gives_one_line_and_the_exit_status(exc, code, capsys):
    assert cli.run(_raiser(exc), [], prog='tool.py') == code
    out, err = capsys.readouterr()
    assert out == '' and err.count('\n') == 1 and err.startswith('tool.py: error: ')
    assert 'Traceback' not in err


def test_run_joins_multi_line_messages_and_lets_bugs_through(capsys):
    assert cli.run(_raiser(cli.ToolError('first\n\n  second\n')), [], prog='t') == 1
    assert capsys.readouterr().err == 't: error: first; second\n'
    with pytest.raises(ZeroDivisionError):      # a bug keeps its traceback
        cli.run(lambda argv: 1 / 0, [], prog='t')
    assert cli.run(lambda argv: 3, [], prog='t') == 3
    assert cli.run(lambda argv: {'a': 1}, [], prog='t') == 0


def test_argument_parser_mistakes_are_usage_errors(capsys):
    p = cli.ArgumentParser(prog='t')
    p.add_argument('--n', type=cli.count, default=0)
    assert cli.run(p.parse_args, ['--bogus'], prog='t') == 2
    assert capsys.readouterr().err == ('t: error: unrecognized arguments: --bogus '
                                       '(see --help)\n')
    assert cli.run(p.parse_args, ['--n', '-3'], prog='t') == 2
    assert capsys.readouterr().err == ('t: error: argument --n: must be >= 0, not -3 '
                                       '(see --help)\n')


@pytest.mark.parametrize('kind, text, want', [
    (cli.positive, '2e-4', 2e-4),
    (cli.positive, '0', 'must be > 0, not 0'),
    (cli.positive, 'nan', 'not a finite number'),
    (cli.positive, 'inf', 'not a finite number'),
    (cli.positive, 'abc', "'abc' is not a number"),
    (cli.non_negative, '0', 0.0),
    (cli.non_negative, '-0.5', 'must be >= 0, not -0.5'),
    (cli.count, '0', 0),
    (cli.count, '-3', 'must be >= 0, not -3'),
    (cli.count, '1.5', "'1.5' is not an integer"),
    (cli.positive_count, '0', 'must be >= 1, not 0'),
    (cli.number(float, 0, 1, high_open=True), '1', 'must be < 1, not 1'),
    (cli.number(float, 0, 1, high_open=True), '0.999', 0.999),
    (cli.plain_name, 'indoor_flying1', 'indoor_flying1'),
    (cli.plain_name, '../x', 'must be a plain name'),
    (cli.plain_name, 'a/b', 'must be a plain name'),
    (cli.plain_name, '.hidden', 'must be a plain name'),
    (cli.plain_name, '', 'must be a plain name'),
    (cli.device, 'cpu', 'cpu'),
    (cli.device, 'auto', 'auto'),
    (cli.device, 'bogus', "'bogus' is not a torch device"),
])
def test_option_types(kind, text, want):
    if isinstance(want, str) and not want == text:
        with pytest.raises(argparse.ArgumentTypeError, match=want):
            kind(text)
    else:
        assert kind(text) == want


def test_output_file_rules(tmp_path):
    data = tmp_path / 'in.h5'
    data.write_bytes(b'x')
    out = tmp_path / 'new' / 'out.h5'
    assert cli.output_file(out, overwrite=False) == out      # missing folders are fine
    assert not (tmp_path / 'new').exists()                   # ... and not created by a check
    out.parent.mkdir()
    out.write_bytes(b'old')
    with pytest.raises(cli.UsageError, match='out.h5: exists; pass --overwrite'):
        cli.output_file(out, overwrite=False)
    assert cli.output_file(out, overwrite=True) == out
    link = tmp_path / 'link.h5'
    link.symlink_to(data)
    for path in (data, link, tmp_path / 'new' / '..' / 'in.h5'):
        with pytest.raises(cli.UsageError, match='is the input --data; a tool never writes'):
            cli.output_file(path, overwrite=True, inputs=[('--data', data)])
    with pytest.raises(cli.UsageError, match='is a folder; name a file'):
        cli.output_file(tmp_path, overwrite=True)
    with pytest.raises(cli.UsageError, match='is a folder; name a file'):
        cli.output_file(str(tmp_path / 'missing') + os.sep, overwrite=True)
    with pytest.raises(cli.UsageError, match='in.h5 is not a folder'):
        cli.output_file(data / 'x.h5', overwrite=True)
    assert data.read_bytes() == b'x' and out.read_bytes() == b'old'


def test_output_dir_rules(tmp_path):
    run = tmp_path / 'run'
    assert cli.output_dir(run, ['best.pt'], overwrite=False) == []
    run.mkdir()
    (run / 'notes.txt').write_text('mine')                    # other files do not matter
    assert cli.output_dir(run, ['best.pt', 'frame_*.png'], overwrite=False) == []
    (run / 'best.pt').write_bytes(b'w')
    (run / 'frame_000001.png').write_bytes(b'p')
    with pytest.raises(cli.UsageError, match=r'run: already holds best.pt, frame_000001.png; '
                                             r'pass --overwrite to replace them'):
        cli.output_dir(run, ['best.pt', 'frame_*.png'], overwrite=False)
    assert len(cli.output_dir(run, ['best.pt', 'frame_*.png'], overwrite=True)) == 2
    with pytest.raises(cli.UsageError, match='is the input --init'):
        cli.output_dir(run, ['best.pt'], overwrite=True, inputs=[('--init', run / 'best.pt')])
    with pytest.raises(cli.UsageError, match='is a file; name a folder'):
        cli.output_dir(run / 'notes.txt', ['x'], overwrite=True)


def test_made_dirs_removes_only_the_empty_folders_it_made(tmp_path):
    keep = tmp_path / 'keep'
    keep.mkdir()
    with pytest.raises(RuntimeError):
        with cli.made_dirs(keep / 'a' / 'b') as made:
            assert made.is_dir()
            raise RuntimeError('failed start')
    assert os.listdir(tmp_path) == ['keep'] and os.listdir(keep) == []
    with pytest.raises(RuntimeError):
        with cli.made_dirs(keep / 'a' / 'b'):
            (keep / 'a' / 'partial.txt').write_text('written before the failure')
            raise RuntimeError('failed later')
    assert os.listdir(keep / 'a') == ['partial.txt']      # never removes anything written
    with cli.made_dirs(tmp_path / 'ok') as made:
        pass
    assert made.is_dir()


def _parser():
    p = cli.ArgumentParser(prog='t')
    p.add_argument('--config')
    p.add_argument('--lr', type=cli.positive, default=1.0)
    p.add_argument('--max-val-frames', type=cli.count, default=0)
    p.add_argument('--milestones', type=cli.count, nargs='*', default=[8])
    p.add_argument('--quiet', action='store_true')
    return p


@pytest.mark.parametrize('text, want', [
    ('lr: 0.5\nmax-val-frames: 3\nmilestones: [1, 2]\nquiet: true\n',
     {'lr': 0.5, 'max_val_frames': 3, 'milestones': [1, 2], 'quiet': True}),
    ('max_val_frames: 4\nquiet: false\n', {'max_val_frames': 4, 'quiet': False}),
    ('', {'lr': 1.0}),
    ('lr: -1\n', r"--config .*c.yaml: argument --lr: must be > 0, not -1"),
    ('lr: abc\n', r"argument --lr: 'abc' is not a number"),
    ('epoch: 5\n', r'c.yaml: unknown options epoch'),
    ('config: other.yaml\n', r'unknown options config'),
    ('quiet: 1\n', r'quiet must be true or false'),
    ('lr: [1, 2]\n', r'lr takes one value'),
    ('lr:\n', r'lr has no value'),
    ('- 1\n- 2\n', r'expected a mapping of option names'),
    ('lr: [1\n', r'not valid YAML'),
])
def test_yaml_config_goes_through_the_same_checks(tmp_path, text, want):
    cfg = tmp_path / 'c.yaml'
    cfg.write_text(text)
    if isinstance(want, dict):
        args = cli.parse_with_config(_parser(), ['--config', str(cfg)])
        assert {k: getattr(args, k) for k in want} == want
    else:
        with pytest.raises(cli.UsageError, match=want):
            cli.parse_with_config(_parser(), ['--config', str(cfg)])


def test_command_line_wins_over_the_config(tmp_path):
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('lr: 0.5\nmilestones: [1, 2]\n')
    args = cli.parse_with_config(_parser(), ['--config', str(cfg), '--lr', '0.25',
                                             '--milestones', '7'])
    assert (args.lr, args.milestones) == (0.25, [7])
    with pytest.raises(cli.UsageError, match='--config .*missing.yaml: no such file'):
        cli.parse_with_config(_parser(), ['--config', str(tmp_path / 'missing.yaml')])
