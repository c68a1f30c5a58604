import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from modeling_abaw.demo_report import FIGURE_DIR, FIGURES

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("sync_demo", ROOT / "docs" / "sync_demo.py")
sync_demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_demo)


def test_the_readme_shows_the_committed_demo_run():
    # docs/demo holds the last default `make demo` run; the README's block must be what its files render.
    assert sync_demo.main(["--check"]) == 0


def test_sync_copies_a_run_and_rewrites_only_the_block(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name in sync_demo.RUN_FILES + FIGURES:
        shutil.copyfile(ROOT / FIGURE_DIR / name, run / name)
    results = json.loads((run / "results.json").read_text())
    # Another seed where the first ablation row flips: its conclusion is "not shown".
    other = json.loads(json.dumps(results))
    other["settings"]["seed"] = results["settings"]["seed"] + 1
    first = other["ablations"][0]
    first["verdict"] = {"shown": "opposite", "opposite": "shown", "not shown": "shown"}[first["verdict"]]
    (tmp_path / "seed1").mkdir()
    (tmp_path / "seed1" / "results.json").write_text(json.dumps(other))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{sync_demo.BEGIN}\nstale table\n{sync_demo.END}\nafter\n")

    sync_demo.sync(run, tmp_path / "seed1", readme, tmp_path / "docs_demo")

    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{sync_demo.END}\nafter\n")
    assert "stale table" not in text
    block = sync_demo.readme_block(text)
    assert block == sync_demo.demo_block(tmp_path / "docs_demo")
    seed_rows = [line for line in block.splitlines() if line.startswith(f"| {first['ablation']} | {first['metric']} |")]
    assert seed_rows and seed_rows[-1].endswith("| not shown |")
    for name in sync_demo.RUN_FILES + FIGURES:
        assert (tmp_path / "docs_demo" / name).read_bytes() == (run / name).read_bytes()


def test_sync_refuses_an_unfinished_run(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit, match="not a finished demo run"):
        sync_demo.sync(tmp_path / "run", None, tmp_path / "README.md", tmp_path / "docs_demo")
