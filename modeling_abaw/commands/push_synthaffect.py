"""`abaw push-synthaffect`: publish a generated SynthAffect as a Hub dataset repository (`datasets.load_dataset`
reads it without a script; see modeling_abaw.hub.synthaffect). `abaw synth --push-to-hub` runs it after generating;
`hub_scripts/push_synthaffect.py` runs the same command."""

import argparse
from pathlib import Path

from ..errors import InputError


def add_push_options(parser: argparse.ArgumentParser, repo_flag: str = "--repo-id", required: bool = True) -> None:
    parser.add_argument(repo_flag, dest="repo_id", required=required, help="the dataset repo, ORG/NAME")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="the branch to commit to (created if needed; default: main)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--tag", help="tag the commit, e.g. v0.1")


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "push-synthaffect",
        help="push a generated SynthAffect to the Hugging Face Hub as a dataset repository",
        description="Build the dataset repository of a SynthAffect folder (frames/<split>.parquet with the face "
        "crops and labels, which datasets.load_dataset reads without a script; the Aff-Wild2 layout; a dataset "
        "card) and upload it as one commit.",
    )
    parser.add_argument("--data", type=Path, required=True, help="the SynthAffect folder (`abaw synth --output`)")
    add_push_options(parser)
    parser.add_argument("--dry-run", type=Path, metavar="OUT", help="only build the repository in OUT")
    parser.set_defaults(func=run)


def push(data: Path, args: argparse.Namespace, dry_run: Path | None = None) -> None:
    from ..hub.synthaffect import push_synthaffect

    push_synthaffect(
        data,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        create_pr=args.create_pr,
        tag=args.tag,
        dry_run=dry_run,
    )


def run(args: argparse.Namespace) -> int:
    if not args.data.is_dir():
        raise InputError(f"--data {args.data}: no such folder")
    push(args.data, args, args.dry_run)
    return 0
