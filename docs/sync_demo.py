"""Keep the README's demo section the last demo run's: copy a run's results and figures into docs/demo/ and
regenerate the README block between the markers from them, or check that the block is what they give.

    python docs/sync_demo.py demo_output --other-seed demo_output_seed1   # after `make demo` (+ a run with --seed 1)
    python docs/sync_demo.py --check                                      # the README block equals docs/demo's

The block is `demo_report.readme_section` of docs/demo/results.json (+ durations.json), followed by the ablations of
each seed side by side with their conclusion (`demo_report.seed_table`) when another seed's results are there.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

from modeling_abaw.demo_report import FIGURE_DIR, FIGURES, readme_section, seed_table
from modeling_abaw.io import atomic_path, write_text

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- demo-results:begin -->", "<!-- demo-results:end -->"
RUN_FILES = ("results.json", "durations.json", "results.md")
OTHER_SEED_FILE = "results_other_seed.json"


def demo_block(docs_demo: Path) -> str:
    """The README block rendered from docs/demo/'s files."""
    results = json.loads((docs_demo / "results.json").read_text())
    durations = json.loads((docs_demo / "durations.json").read_text())
    block = readme_section(results, durations)
    other = docs_demo / OTHER_SEED_FILE
    if other.is_file():
        block += (
            "\nThe ablations on two seeds (`abaw demo --seed N`, the same settings otherwise); an effect is concluded "
            "only where both seeds agree:\n\n" + seed_table([results, json.loads(other.read_text())]) + "\n"
        )
    return block


def readme_block(readme: str) -> str:
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise SystemExit(f"README.md: expected one {BEGIN} ... {END} block")
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def sync(run: Path, other_seed: Path | None, readme_path: Path, docs_demo: Path) -> None:
    missing = [name for name in RUN_FILES + FIGURES if not (run / name).is_file()]
    if missing:
        raise SystemExit(f"{run}: not a finished demo run (no {', '.join(missing)})")
    docs_demo.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES + FIGURES:
        with atomic_path(docs_demo / name) as temporary:
            shutil.copyfile(run / name, temporary)
    if other_seed is not None:
        with atomic_path(docs_demo / OTHER_SEED_FILE) as temporary:
            shutil.copyfile(other_seed / "results.json", temporary)
    readme = readme_path.read_text()
    readme_block(readme)  # exactly one block
    head, rest = readme.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    write_text(readme_path, f"{head}{BEGIN}\n{demo_block(docs_demo)}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", type=Path, help="a finished `abaw demo` output folder")
    parser.add_argument("--other-seed", type=Path, help="the output folder of the same demo with another --seed")
    parser.add_argument("--check", action="store_true", help="only check that README.md's block is docs/demo's")
    args = parser.parse_args(argv)
    readme_path, docs_demo = ROOT / "README.md", ROOT / FIGURE_DIR
    if args.check:
        if readme_block(readme_path.read_text()) != demo_block(docs_demo):
            print("README.md's demo block is not docs/demo's results: run docs/sync_demo.py", file=sys.stderr)
            return 1
        return 0
    if args.run is None:
        parser.error("give a demo output folder, or --check")
    sync(args.run, args.other_seed, readme_path, docs_demo)
    print(f"README.md's demo block and {docs_demo} now hold {args.run}'s results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
