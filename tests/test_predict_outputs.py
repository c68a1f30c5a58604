"""`abaw predict` output names: every input keeps its own results, and results of an earlier run are not replaced
unless --overwrite is given."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from modeling_abaw.cli import main
from modeling_abaw.commands.predict import output_names


@pytest.fixture
def same_stem(tmp_path, tiny_synthaffect):
    """x.mp4 (40 frames) and x.jpg (one face crop), whose names differ only by the extension."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copy(tiny_synthaffect / "videos" / "synth_000.mp4", folder / "x.mp4")
    shutil.copy(tiny_synthaffect / "cropped_aligned" / "synth_000" / "00001.jpg", folder / "x.jpg")
    return folder


def predict(*arguments):
    return main(["predict", *map(str, arguments), "--device", "cpu", "--dtype", "float32"])


def test_output_names_are_distinct_and_deterministic():
    paths = [Path("a/x.mp4"), Path("a/x.jpg"), Path("b/x.mp4"), Path("a/y.mp4"), Path("b/Y.png"), Path("z.mp4")]
    assert list(output_names(paths).values()) == ["x.mp4", "x.jpg", "x.mp4-2", "y.mp4", "Y.png", "z"]


def test_inputs_differing_only_by_extension_are_all_kept(same_stem, tmp_path, tiny_face_mae_affect_dir, capsys):
    output = tmp_path / "out"
    assert predict(same_stem, "--model", tiny_face_mae_affect_dir, "--output", output) == 0, capsys.readouterr().err
    assert sorted(path.name for path in output.iterdir()) == ["x.jpg.csv", "x.jpg.png", "x.mp4.csv", "x.mp4.png"]
    assert len(pd.read_csv(output / "x.mp4.csv")) == 40 and len(pd.read_csv(output / "x.jpg.csv")) == 1


def test_earlier_results_are_kept_unless_overwrite(same_stem, tmp_path, tiny_face_mae_affect_dir, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "x.jpg.csv").write_text("results of an earlier run\n")
    video, image = same_stem / "x.mp4", same_stem / "x.jpg"
    assert predict(video, image, "--model", tiny_face_mae_affect_dir, "--output", output) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "x.jpg.csv" in error[0] and "--overwrite" in error[0]
    assert [path.name for path in output.iterdir()] == ["x.jpg.csv"]
    assert (output / "x.jpg.csv").read_text() == "results of an earlier run\n"

    assert predict(video, image, "--model", tiny_face_mae_affect_dir, "--output", output, "--overwrite") == 0
    assert len(pd.read_csv(output / "x.jpg.csv")) == 1
