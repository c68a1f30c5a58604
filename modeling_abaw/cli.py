"""The `abaw` command line. Each subcommand lives in its own module, which defines `add_subcommand(subparsers)`
and sets `func` on its parser; this module only wires them and turns user errors into one clear line."""

import argparse
import importlib
import sys

from .errors import InputError

# Modules defining a subcommand: each module's `add_subcommand(subparsers)` adds its parser.
SUBCOMMAND_MODULES = (
    "modeling_abaw.commands.demo",
    "modeling_abaw.commands.models",
    "modeling_abaw.commands.train",
    "modeling_abaw.commands.synth",
    "modeling_abaw.commands.extract_features",
    "modeling_abaw.commands.predict",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="abaw", description="Multi-modal facial affect analysis (ABAW: action units, expression, valence/arousal)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).add_subcommand(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (InputError, FileNotFoundError) as error:
        print(f"abaw {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"abaw {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
