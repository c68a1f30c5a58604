"""The `abaw` parser's conventions: one flag style (dashes, with the underscore spelling accepted), `--version`,
help text as written, and user errors as one line."""

import argparse
import importlib.metadata
import re

import pytest

import modeling_abaw
from modeling_abaw.cli import build_parser, main


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def dashed_options(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings if "-" in option[2:]]


@pytest.mark.parametrize("command", ["demo", "synth", "extract-features", "predict"])
def test_every_dashed_option_also_accepts_its_underscore_spelling(command):
    parser = subcommand_parsers()[command]
    options = dashed_options(parser)
    assert options, f"abaw {command} has no dashed option"
    for option in options:
        alias = "--" + option[2:].replace("-", "_")
        assert parser._option_string_actions[alias] is parser._option_string_actions[option], alias


def test_underscore_spelling_parses_like_the_dashed_one(tmp_path):
    parser = build_parser()
    dashed = parser.parse_args(["demo", "--model-size", "demo-tiny", "--num-workers", "0", "--tmf-epochs", "3"])
    underscored = parser.parse_args(["demo", "--model_size", "demo-tiny", "--num_workers", "0", "--tmf_epochs", "3"])
    assert vars(underscored) == vars(dashed)
    assert (dashed.model_size, dashed.num_workers, dashed.tmf_epochs) == ("demo-tiny", 0, 3)


def test_help_lists_the_dashed_spelling_only():
    for command, parser in subcommand_parsers().items():
        text = parser.format_help()
        for option in dashed_options(parser):
            if "_" in option:
                assert option not in text, f"abaw {command} --help lists the alias {option}"
            else:
                assert option in text, f"abaw {command} --help misses {option}"
    assert "--batch_size" in build_parser().format_help()  # the top-level help says that the alias exists


def test_options_are_not_abbreviated(capsys):
    # With both spellings registered, a prefix would match two options; abbreviations are off altogether.
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["demo", "--num", "0"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --num 0" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"abaw {importlib.metadata.version('modeling-abaw')}\n"


def test_version_falls_back_to_the_package_attribute_without_installed_metadata(monkeypatch, capsys):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"abaw {modeling_abaw.__version__}\n"


def test_help_shows_percent_signs_as_written():
    # argparse %-formats `help` strings but not `description`s: "%%" in a description is printed as is.
    models_help = " ".join(subcommand_parsers()["models"].format_help().split())
    assert "75% masking" in models_help
    for command, parser in subcommand_parsers().items():
        assert "%%" not in parser.format_help(), command
    assert not re.search(r"%\(\w+\)", build_parser().format_help())


def test_a_user_error_is_one_line_and_status_2(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--videos", "2"]) == 2
    assert capsys.readouterr().err == (
        "abaw demo: error: --videos must be at least 4 (train, validation and test videos), got 2\n"
    )


@pytest.mark.parametrize("command", ["demo", "models"])
def test_an_output_that_is_a_file_is_a_user_error(tmp_path, capsys, command):
    output = tmp_path / "results.txt"
    output.write_text("not a folder")
    assert main([command, "--output", str(output)]) == 2
    assert capsys.readouterr().err == f"abaw {command}: error: --output {output}: not a folder\n"
