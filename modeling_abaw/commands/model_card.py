"""`abaw model-card`: (re)write the README.md model card of a saved model folder from the folder alone."""

import argparse
from pathlib import Path


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "model-card",
        help="write the README.md model card of a model folder (best/, final/) from what the folder holds",
        description="Write DIR/README.md, the Hugging Face model card of a model folder a training stage saved: YAML "
        "(library, pipeline tag, tags, base model, datasets, licence and gate, model-index from eval_results.json) "
        "and the body (the model, its training from training_info.json, results, usage, limitations, citation). "
        "The training stages write it already; this regenerates it, e.g. for the Hub repo it goes to.",
    )
    parser.add_argument("model_dir", type=Path, metavar="DIR", help="the model folder")
    parser.add_argument("--repo-id", help="the Hub repo the model goes to (ORG/NAME): its name and usage examples")
    parser.add_argument(
        "--base-model",
        help="Hub id of the model it was fine-tuned from (default: the recorded start model, if a Hub id)",
    )
    parser.add_argument(
        "--license",
        help="Hub licence id (default: the training data's terms: other + the Aff-Wild2 EULA, or apache-2.0 "
        "for SynthAffect)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub.cards import write_model_card

    path = write_model_card(args.model_dir, repo_id=args.repo_id, base_model=args.base_model, license=args.license)
    print(f"Wrote {path}")
    return 0
