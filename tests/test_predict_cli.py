"""`abaw predict`: outputs per input, the CSV schema, ABAW submission files, per-input errors and atomic writes."""

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import expected_table_columns

from modeling_abaw.cli import main
from modeling_abaw.data import read_submission
from modeling_abaw.tasks import AU, EXPR

COLUMNS = expected_table_columns()


@pytest.fixture
def inputs(tmp_path, tiny_synthaffect):
    """A folder with two SynthAffect videos, a face image and a corrupt video."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    for video in ("synth_000", "synth_002"):
        shutil.copy(tiny_synthaffect / "videos" / f"{video}.mp4", folder)
    shutil.copy(tiny_synthaffect / "cropped_aligned" / "synth_000" / "00001.jpg", folder / "face.jpg")
    (folder / "broken.mp4").write_bytes((folder / "synth_000.mp4").read_bytes()[:3000])
    (folder / "notes.txt").write_text("not an input: ignored in folders")
    return folder


def predict(*arguments):
    return main(["predict", *map(str, arguments)])


def test_outputs_schema_and_errors(tmp_path, inputs, tiny_face_mae_affect_dir, capsys):
    (tmp_path / "empty").mkdir()
    output = tmp_path / "out"
    status = predict(
        inputs,
        tmp_path / "empty",
        tmp_path / "missing.mp4",
        "--model",
        tiny_face_mae_affect_dir,
        "--output",
        output,
        "--abaw-format",
        "--device",
        "cpu",
    )
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("abaw predict: error")]
    assert status == 1
    assert "\r" not in stderr and "\x1b[" not in stderr  # no progress bars when stderr is not a terminal
    assert len(errors) == 3 and all(line.count("\n") == 0 for line in errors)
    for name in ("broken.mp4", "empty", "missing.mp4"):
        assert sum(name in line for line in errors) == 1, errors
    names = ["face", "synth_000", "synth_002"]
    assert sorted(path.name for path in output.iterdir()) == [
        "abaw",
        *[f"{n}.{e}" for n in names for e in ("csv", "png")],
    ]

    table = pd.read_csv(output / "synth_000.csv")
    assert list(table.columns) == COLUMNS and len(table) == 40
    assert table["frame"].tolist() == list(range(1, 41)) and set(table["has_face"]) <= {0, 1}
    assert table["expression"].isin(EXPR.labels).all() and not table[list(AU.labels)].isna().any(axis=None)
    np.testing.assert_allclose(table[list(EXPR.labels)].sum(axis=1), 1, atol=1e-4)
    assert len(pd.read_csv(output / "face.csv")) == 1
    assert (output / "synth_000.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    for task, filename in (
        ("au", "AU_Detection_Challenge"),
        ("expr", "EXPR_Recognition_Challenge"),
        ("va", "VA_Estimation_Challenge"),
    ):
        submission = read_submission(output / "abaw" / f"{filename}.csv", task)
        assert list(submission) == names and len(submission["synth_000"]) == 40
    submitted = read_submission(output / "abaw" / "EXPR_Recognition_Challenge.csv", "expr")["synth_000"]
    assert [EXPR.labels[index] for index in submitted] == table["expression"].tolist()
    assert not list(output.rglob("*.tmp"))


@pytest.mark.smoke
def test_every_input_processed_exits_zero_and_all_faces(tmp_path, tiny_synthaffect, tiny_face_mae_affect_dir):
    video = tiny_synthaffect / "videos" / "synth_001.mp4"  # the two-person video
    output = tmp_path / "out"
    assert (
        predict(
            video,
            "--model",
            tiny_face_mae_affect_dir,
            "--output",
            output,
            "--all-faces",
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--smoothing",
            "median",
            "--batch-size",
            "7",
        )
        == 0
    )
    table = pd.read_csv(output / "synth_001.csv")
    assert list(table.columns) == ["frame", "face", *COLUMNS[1:]]
    assert table.groupby("face").size().to_dict() == {1: 40, 2: 40}


def test_missing_model_is_one_line_and_status_2(tmp_path, inputs, capsys):
    status = predict(inputs / "face.jpg", "--model", tmp_path / "no-model", "--output", tmp_path / "out")
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1 and "no-model" in error[0]
    assert not (tmp_path / "out").exists()


def test_outputs_are_written_atomically(tmp_path, inputs, tiny_face_mae_affect_dir, monkeypatch):
    output = tmp_path / "out"
    output.mkdir()
    (output / "face.csv").write_text("previous results\n")
    original = pd.DataFrame.to_csv

    def crash_half_way(self, path, **kwargs):
        original(self.iloc[: len(self) // 2], path, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash_half_way)
    assert (
        predict(
            inputs / "face.jpg",
            inputs / "synth_000.mp4",
            "--model",
            tiny_face_mae_affect_dir,
            "--output",
            output,
            "--overwrite",
            "--device",
            "cpu",
        )
        == 130
    )
    assert [path.name for path in output.iterdir()] == ["face.csv"]  # no half-written file, no temporary left
    assert (output / "face.csv").read_text() == "previous results\n"
