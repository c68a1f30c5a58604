"""The package without its extras: `pip install modeling-abaw` alone runs `abaw predict` on a video and loads models
with `AutoModel`, and a command that needs an extra says which in one line.

In the locked suite the extras' packages are installed, so a fresh Python hides them: a module set to None in
`sys.modules` cannot be imported, and `importlib.util.find_spec` answers None for it, as for an absent package.
`make test-latest` and `make test-lowest` first run this file where only the package (and pytest) is installed, with
ABAW_CORE_ONLY=1: there the extras are really absent, and the test checks that they are.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from modeling_abaw.environment import declared_dependencies

pytestmark = pytest.mark.smoke

CORE_ONLY = os.environ.get("ABAW_CORE_ONLY") == "1"
# The packages of the train, space and onnx extras (pyyaml aside: transformers needs it, so it is always there).
EXTRA_MODULES = ("datasets", "tensorboard", "gradio", "spaces", "onnx", "onnxruntime", "onnxscript")

SCRIPT = """
import importlib.util, json, sys
modules, core_only = json.loads(sys.argv[1]), sys.argv[2] == "1"
if core_only:
    present = [name for name in modules if importlib.util.find_spec(name) is not None]
    assert not present, f"installed although no extra was asked for: {present}"
else:
    sys.modules.update(dict.fromkeys(modules))  # each import of these now fails as for an absent package
from modeling_abaw.cli import main
if sys.argv[3] != "-":
    from transformers import AutoModel
    print("loaded", type(AutoModel.from_pretrained(sys.argv[3])).__name__)
sys.exit(main(sys.argv[4:]))
"""


def run_core_only(model_dir, *argv, cwd):
    """Run `abaw *argv` in a Python without the extras, after loading `model_dir` with AutoModel ("-": none)."""
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(EXTRA_MODULES), str(int(CORE_ONLY)), str(model_dir), *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def test_predict_and_automodel_need_no_extra(tiny_synthaffect, tiny_face_mae_affect_dir, tmp_path):
    video = Path(tiny_synthaffect) / "videos" / "synth_000.mp4"
    result = run_core_only(
        tiny_face_mae_affect_dir,
        "predict",
        str(video),
        "--model",
        tiny_face_mae_affect_dir,
        "--output",
        "out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "loaded FaceMAEForAffect" in result.stdout
    table = (tmp_path / "out" / "synth_000.csv").read_text().splitlines()
    assert len(table) == 1 + 40 and table[0].startswith("frame,")  # a header and one row per frame of the video
    assert (tmp_path / "out" / "synth_000.png").stat().st_size > 0


def test_a_command_that_needs_an_extra_names_it_in_one_line(tmp_path):
    result = run_core_only("-", "train", "finetune", "--output-dir", "run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "abaw train: error: datasets is not installed; this command needs the train extra: "
        "pip install 'modeling-abaw[train]'"
    ]


def test_every_package_of_the_extras_is_hidden_here():
    """A package added to an extra is also kept out of the core install's test (pyyaml aside)."""
    extras = {d.name for d in declared_dependencies() if d.extra in ("train", "space", "onnx")}
    assert extras - {"pyyaml"} == {canonicalize_name(name) for name in EXTRA_MODULES}
