"""`abaw env`: what a bug report needs, as `transformers env` and `accelerate env` print it."""

import argparse
import json


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "env",
        help="print the environment for a bug report (versions, CPU flags, GPU) and any version outside the tested "
        "ranges",
        description="Print the package's version, Python, the platform, the CPU and the flags that choose its "
        "kernels (AVX-512, AVX512-BF16, AMX), the GPUs and the CUDA build of torch, and the version of every "
        "dependency; then name each installed version outside the range pyproject.toml declares as tested. Paste "
        "the output into your bug report.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON, for scripts")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..environment import format_report, report

    info = report()
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0
