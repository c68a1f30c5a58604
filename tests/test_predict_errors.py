"""User mistakes in `abaw predict` and `abaw extract-features` models: one line on stderr, exit status 2, and no
network wait when the Hub cannot be reached."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest

from modeling_abaw.cli import main
from modeling_abaw.inference import checkpoints


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def image(tiny_synthaffect):
    return tiny_synthaffect / "cropped_aligned" / "synth_000" / "00001.jpg"


def extract(tiny_synthaffect, visual, output):
    return main(["extract-features", "--data", str(tiny_synthaffect), "--visual", str(visual), "--output", output])


def test_extract_features_with_a_corrupt_or_missing_visual_model(
    tiny_synthaffect, tiny_face_mae_affect_dir, tmp_path, capsys
):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_face_mae_affect_dir, corrupt)
    (corrupt / "config.json").write_text('{"model_type": "face_mae", "hidden_size": ')
    assert extract(tiny_synthaffect, corrupt, str(tmp_path / "cache")) == 2
    assert "corrupt" in one_error_line(capsys)
    assert extract(tiny_synthaffect, tmp_path / "missing" / "best", str(tmp_path / "cache")) == 2
    line = one_error_line(capsys)
    assert "missing/best" in line and "no such folder" in line
    assert not (tmp_path / "cache").exists()


def test_a_name_neither_folder_nor_hub_id_fails_before_any_network_call(image, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(checkpoints, "get_session", lambda: pytest.fail("the Hub was contacted"))
    status = main(["predict", str(image), "--model", "demo_output/finetune/best", "--output", str(tmp_path / "o")])
    assert status == 2 and "demo_output/finetune/best" in one_error_line(capsys)


def test_hub_id_offline_fails_at_once(image, tmp_path, capsys):
    assert huggingface_hub.constants.HF_HUB_OFFLINE  # set by conftest
    assert main(["predict", str(image), "--model", "nope", "--output", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys)
    assert "'nope'" in line and "offline" in line


def test_hub_id_without_network_fails_at_once(image, tmp_path):
    """No HF_HUB_OFFLINE, and the Hub does not answer (a closed local port): no half-minute of retries."""
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "modeling_abaw.cli", "predict", str(image), "--model", "nope", "--output", "out"]
    # huggingface_hub's retries alone sleep 1 + 2 + 4 + 8 + 16 = 31 s; starting Python and torch takes ~10 s.
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "'nope'" in lines[0], result.stderr


def test_unknown_face_detector_fails_before_the_model_loads(image, tmp_path, capsys):
    status = main(["predict", str(image), "--model", "nope", "--output", str(tmp_path / "o"), "--detector", "mtcnn"])
    line = one_error_line(capsys)
    assert status == 2 and "'mtcnn'" in line and "blazeface" in line  # not the model's error: checked first
