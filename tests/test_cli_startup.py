"""`abaw --help` and `abaw <command> --help` import no heavy library: the parser is built from the command modules,
which import their implementation inside `run`. Checked through `sys.modules` in a fresh interpreter, not by timing
(benchmarks/bench_startup.py measures the times)."""

import json
import subprocess
import sys

import pytest

# Imported by the commands' implementations, never needed to print help. `modeling_abaw.train` itself is light (the
# list of stages); its submodules are the training stages.
HEAVY_MODULES = ("datasets", "accelerate", "av", "cv2", "matplotlib", "pandas", "scipy", "modeling_abaw.train.")

# Imports the CLI, then each command module, then prints every help text, and reports which heavy modules (top-level
# names; training modules in full) each step imported first. A heavy module that two commands import is reported
# for the first of them only.
PROGRAM = """
import contextlib, importlib, io, json, sys

def heavy_modules():
    heavy = {heavy!r}
    return {{n if n.startswith("modeling_abaw") else n.split(".")[0] for n in sys.modules if n.startswith(heavy)}}

report, seen = {{}}, heavy_modules()

def record(step):
    global seen
    report[step] = sorted(heavy_modules() - seen)
    seen = heavy_modules()

from modeling_abaw.cli import SUBCOMMAND_MODULES, build_parser, main
record("import modeling_abaw.cli")
for module in SUBCOMMAND_MODULES:
    importlib.import_module(module)
    record(module)
(subparsers,) = [action for action in build_parser()._actions if action.choices]
for argv in [["--help"]] + [[command, "--help"] for command in subparsers.choices]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
    record("abaw " + " ".join(argv))
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def heavy_imports() -> dict[str, list[str]]:
    """{step: heavy modules it imported first}, from one fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(heavy=HEAVY_MODULES)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_package_import_of_the_cli_imports_nothing_heavy(heavy_imports):
    assert heavy_imports["import modeling_abaw.cli"] == []


def test_command_modules_and_every_help_import_nothing_heavy(heavy_imports):
    assert {"abaw --help", "abaw demo --help", "modeling_abaw.commands.demo"} <= set(heavy_imports)
    culprits = {step: modules for step, modules in heavy_imports.items() if modules}
    culprits.pop("import modeling_abaw.cli", None)  # the package's part, checked above
    assert culprits == {}
