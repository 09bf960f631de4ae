"""main() builds only the command a command line names (cli.only_named): every command's help,
usage errors and unknown names read exactly as the whole command line interface gives them."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from casemate import cli


def _command_paths(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [(*prefix, cli._command_name(c)) for c in group.registered_commands]
    for sub in group.registered_groups:
        assert sub.name is not None and sub.typer_instance is not None
        paths.append((*prefix, sub.name))
        paths += _command_paths(sub.typer_instance, (*prefix, sub.name))
    return paths


def _answer(app: typer.Typer, args: list[str]) -> tuple[int, str]:
    done = CliRunner().invoke(app, args, prog_name="casemate")
    return done.exit_code, done.output


def _narrowed(args: list[str]) -> typer.Typer:
    return cli.only_named(cli.app, args, cli.ROOT_VALUE_OPTIONS)


def test_every_commands_help_reads_the_same_when_only_it_is_built() -> None:
    paths = _command_paths(cli.app)
    assert ("catalog", "list") in paths and ("verify",) in paths and ("history", "import") in paths
    for path in paths:
        args = ["--state-dir", "/nonexistent", *path, "--help"]
        assert _answer(_narrowed(args), args) == _answer(cli.app, args), path


def test_a_command_line_that_names_a_command_builds_that_one_alone() -> None:
    lean = _narrowed(["--state-dir=/x", "--catalog", "catalog", "catalog", "list", "--level", "1"])
    assert [g.name for g in lean.registered_groups] == ["catalog"]
    assert lean.registered_commands == []
    inner = lean.registered_groups[0].typer_instance
    assert inner is not None
    assert [cli._command_name(c) for c in inner.registered_commands] == ["list"]
    verify = _narrowed(["verify", "-i", "x.yml"])
    assert [cli._command_name(c) for c in verify.registered_commands] == ["verify"]
    assert verify.registered_groups == []
    # the whole app is left as it was
    assert len(cli.app.registered_commands) > 1 and len(cli.app.registered_groups) > 1


def test_what_names_no_command_gets_the_whole_command_line_interface() -> None:
    for args in (
        [],
        ["--help"],
        ["--state-dir"],
        ["--bogus", "verify"],
        ["histroy"],
        ["catalog", "lst"],
        ["history", "--limit", "3"],
    ):
        lean = _narrowed(args)
        if args[:1] in (["catalog"], ["history"]):
            assert lean.registered_groups[0].typer_instance in [
                g.typer_instance for g in cli.app.registered_groups
            ], args
        else:
            assert lean is cli.app, args


def test_usage_errors_read_the_same_when_only_the_command_is_built() -> None:
    for args in (
        ["histroy"],
        ["catalog", "lst"],
        ["verify"],
        ["verify", "-i", "x.yml", "--level", "many"],
        ["catalog", "list", "--bogus"],
        ["harden", "--inventory"],
        ["--state-dir=/x", "version", "extra"],
    ):
        assert _answer(_narrowed(args), args) == _answer(cli.app, args), args
