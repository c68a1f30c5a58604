"""`abaw push`: publish a model folder (best/, final/) to the Hugging Face Hub as one commit, with its card, licence,
results and history; `hub_scripts/push_to_hub.py` runs the same command. See modeling_abaw.hub.publish."""

import argparse
from pathlib import Path

from ..errors import InputError


def backbone_id(value: str) -> tuple[str, str]:
    name, separator, hub_id = value.partition("=")
    if not separator or not name or not hub_id:
        raise argparse.ArgumentTypeError(f"expected NAME=ORG/ID, got {value!r}")
    return name, hub_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="the model folder (e.g. <output_dir>/best)")
    parser.add_argument("--repo-id", required=True, help="the Hub repo, ORG/NAME (created if needed)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="the branch to commit to (created if needed; default: main)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--tag", help="tag the commit, e.g. v0.1")
    parser.add_argument(
        "--dry-run",
        type=Path,
        metavar="OUT",
        help="only build and check the folder in OUT: exactly what would be pushed",
    )
    parser.add_argument(
        "--backbone",
        type=backbone_id,
        action="append",
        default=[],
        metavar="NAME=HUB_ID",
        help="the Hub id of a TMF backbone its config names by local folder (repeat per backbone)",
    )
    parser.add_argument(
        "--push-backbones",
        metavar="ORG/PREFIX",
        help="push each local TMF backbone first, to ORG/PREFIX-<name> (main branch), and name those ids",
    )
    parser.add_argument(
        "--license",
        help="Hub licence id of the card (default: the training data's terms, `other` + the Aff-Wild2 terms for "
        "Aff-Wild2-trained models)",
    )
    parser.add_argument("--logs", action="store_true", help="upload the run's TensorBoard logs/ too")


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "push",
        help="push a model folder to the Hugging Face Hub (card, licence, results, one commit)",
        description="Build the complete Hub folder of a model (safetensors, config with auto_map, modeling code, "
        "image processor, model card, licence, eval_results.json, history.json), check it loads with "
        "trust_remote_code=True without modeling-abaw, then create the repo and upload it as one commit.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.model.is_dir():
        raise InputError(f"--model {args.model}: no such model folder")
    names = [name for name, _ in args.backbone]
    if len(set(names)) != len(names):
        raise InputError(f"--backbone: a backbone named twice ({', '.join(names)})")

    from ..hub.publish import push_model_folder

    push_model_folder(
        args.model,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        create_pr=args.create_pr,
        tag=args.tag,
        backbone_ids=dict(args.backbone),
        push_backbones=args.push_backbones,
        license=args.license,
        logs=args.logs,
        dry_run=args.dry_run,
    )
    return 0
