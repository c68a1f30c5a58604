"""The `abaw` command line. Each subcommand lives in its own module, which defines `add_subcommand(subparsers)`
and sets `func` on its parser; this module only wires them and turns user errors into one clear line.

Building the parser imports every command module (`abaw --help` lists them all), so those modules import nothing
heavy at module level: a command's implementation is imported inside its `run`.
"""

import argparse
import copy
import importlib
import importlib.metadata
import sys

from .errors import InputError

# Modules defining a subcommand: each module's `add_subcommand(subparsers)` adds its parser.
SUBCOMMAND_MODULES = (
    "modeling_abaw.commands.demo",
    "modeling_abaw.commands.models",
    "modeling_abaw.commands.push",
    "modeling_abaw.commands.push_synthaffect",
    "modeling_abaw.commands.train",
    "modeling_abaw.commands.cross_validate",
    "modeling_abaw.commands.synth",
    "modeling_abaw.commands.extract_features",
    "modeling_abaw.commands.predict",
    "modeling_abaw.commands.submit",
    "modeling_abaw.commands.export",
    "modeling_abaw.commands.smoothing_search",
    "modeling_abaw.commands.model_card",
    "modeling_abaw.commands.env",
)

FLAG_STYLE = (
    "Options are spelled with dashes (--batch-size); every command also accepts the underscore spelling "
    "(--batch_size). Options are not abbreviated."
)


def underscore_alias(option: str) -> str | None:
    """`--batch_size` for `--batch-size`; None for an option without an inner dash (`--output`, `-o`)."""
    if not option.startswith("--") or "-" not in option[2:]:
        return None
    return "--" + option[2:].replace("-", "_")


class AliasHidingFormatter(argparse.HelpFormatter):
    """Lists each option under its dashed spelling only: the underscore aliases would double every line of help."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        aliases = getattr(action, "underscore_aliases", ())
        if aliases:
            action = copy.copy(action)
            action.option_strings = [option for option in action.option_strings if option not in aliases]
        return super()._format_action_invocation(action)


class ArgumentParser(argparse.ArgumentParser):
    """The parser of `abaw` and of every subcommand (`add_subparsers` builds subparsers of its parser's class): each
    option spelled with dashes also accepts its underscore spelling, so no command has to declare both. (Options of
    an argument group bypass this `add_argument`; no command uses groups, and tests/test_cli_flags.py checks them all.)

    Abbreviations are off: `--batch` would be ambiguous between the two spellings, and an abbreviation that works
    today breaks when a longer option is added.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", AliasHidingFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_argument(self, *name_or_flags: str, **kwargs) -> argparse.Action:
        aliases = [alias for alias in map(underscore_alias, name_or_flags) if alias and alias not in name_or_flags]
        action = super().add_argument(*name_or_flags, *aliases, **kwargs)
        action.underscore_aliases = tuple(aliases)
        return action


def package_version() -> str:
    """The installed distribution's version; the package's own `__version__` when run from a source checkout."""
    try:
        return importlib.metadata.version("modeling-abaw")
    except importlib.metadata.PackageNotFoundError:
        from . import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="abaw",
        description="Multi-modal facial affect analysis (ABAW: action units, expression, valence/arousal).",
        epilog=FLAG_STYLE,
    )
    parser.add_argument("--version", action="version", version=f"abaw {package_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).add_subcommand(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except InputError as error:
        print(f"abaw {args.command}: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        from .environment import missing_extra_message

        message = missing_extra_message(error)
        if message is None:  # not a package of an extra: a broken install, worth its traceback
            raise
        print(f"abaw {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"abaw {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
