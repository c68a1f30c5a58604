"""`abaw submit`: official test submissions from a release's aligned crops, on SynthAffect (which knows its test
labels): every listed video and frame exactly once, `_left`/`_right`, the list's or the sample file's order, the
header, nearest-frame fill, and the submission scored with the metrics."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from modeling_abaw import FaceMAEForAffect, face_image_processor
from modeling_abaw.cli import main
from modeling_abaw.data import AffWild2, read_submission
from modeling_abaw.data.submission import read_sample_submission, submission_file_name, submission_header
from modeling_abaw.metrics import compute_abaw_metrics
from modeling_abaw.tasks import TASK_NAMES, TASKS, default_smoothing_policy

# Not in name order, and a two-person video's halves (train videos of the tiny SynthAffect: its labels are known too).
TEST_VIDEOS = ["synth_003", "synth_001_left", "synth_001_right"]
NUM_FRAMES = 40


@pytest.fixture(scope="module")
def release(tiny_synthaffect, tmp_path_factory):
    """A copy of the tiny SynthAffect whose test lists name TEST_VIDEOS, and what its generator wrote."""
    root = tmp_path_factory.mktemp("release") / "data"
    shutil.copytree(tiny_synthaffect, root)
    for task in TASKS.values():
        (root / "test_set" / task.test_list_file).write_text("\n".join(TEST_VIDEOS) + "\n")
    return root, json.loads((root / "synthaffect.json").read_text())


@pytest.fixture(scope="module")
def unsmoothed_model(tiny_face_mae_affect_dir, tmp_path_factory):
    """The tiny three-task FaceMAE with smoothing off, so that a filled frame's row is exactly its neighbour's."""
    model = FaceMAEForAffect.from_pretrained(tiny_face_mae_affect_dir)
    model.config.smoothing_policy = default_smoothing_policy(TASK_NAMES, "none")
    path = tmp_path_factory.mktemp("unsmoothed")
    model.save_pretrained(path)
    return path


def submit(*arguments):
    return main(["submit", "--device", "cpu", "--dtype", "float32", *map(str, arguments)])


def labels_of(data, task, video):
    split = next(split for split in data.splits(task) if video in data.videos(split, task))
    return data.labels(task, split, video)


def test_submission_has_every_listed_frame_once_in_order_and_scores(release, unsmoothed_model, tmp_path, capsys):
    root, generated = release
    assert submit("--data", root, "--model", unsmoothed_model, "--output", tmp_path / "out") == 0
    data = AffWild2(root)
    model = FaceMAEForAffect.from_pretrained(unsmoothed_model).eval()
    for name in TASK_NAMES:
        task, path = TASKS[name], tmp_path / "out" / submission_file_name(name)
        assert path.read_text().splitlines()[0] == ",".join(submission_header(name))
        submission = read_submission(path, name)
        assert list(submission) == TEST_VIDEOS  # the test list's order, each half of synth_001 as its own video
        assert all(len(rows) == NUM_FRAMES for rows in submission.values())  # every frame of the raw video

        video = "synth_001_left"
        missing = np.array(generated["missing_images"][video]) - 1
        assert len(missing), "the fixture must have frames without a crop"
        faces = np.setdiff1d(np.arange(NUM_FRAMES), missing)
        rows = np.asarray(submission[video])
        for frame in missing:  # nearest frame with a crop, the earlier one on a tie
            nearest = faces[np.argmin(np.abs(faces - frame) + (faces > frame) * 0.5)]
            np.testing.assert_array_equal(rows[frame], rows[nearest])
        crop = Image.open(data.image_dir(video) / f"{faces[0] + 1:05d}.jpg").convert("RGB")
        with torch.no_grad():
            outputs = model(**face_image_processor(model.config)(images=[crop], return_tensors="pt"))
        expected = task.decisions(task.predictions(outputs[task.output_key]))[0].numpy()
        np.testing.assert_allclose(rows[faces[0]], expected, rtol=0, atol=1e-6)

        predictions = np.concatenate([submission[video] for video in TEST_VIDEOS])
        labels = np.concatenate([labels_of(data, name, video) for video in TEST_VIDEOS])
        scores = compute_abaw_metrics({name: predictions}, {name: labels})
        assert -1 <= scores[task.metric_key] <= 1 and np.isfinite(scores["score"])  # VA: a CCC


def test_sample_submission_file_fixes_the_rows(release, unsmoothed_model, tmp_path):
    root, _ = release
    sample_dir = tmp_path / "data"
    shutil.copytree(root, sample_dir)
    order = ["synth_001_right", "synth_003", "synth_001_left"]
    lines = ["image_location," + ",".join(TASKS["au"].labels)]
    lines += [f"{video}/{frame:05d}.jpg," for video in order for frame in range(1, NUM_FRAMES + 1)]
    sample = sample_dir / "test_set" / "prediction_files_format" / TASKS["au"].sample_submission_files[0]
    sample.parent.mkdir()
    sample.write_text("\n".join(lines) + "\n")
    assert read_sample_submission(sample) == dict.fromkeys(order, NUM_FRAMES)
    assert submit("--data", sample_dir, "--model", unsmoothed_model, "--output", tmp_path / "out") == 0
    assert list(read_submission(tmp_path / "out" / submission_file_name("au"), "au")) == order
    assert list(read_submission(tmp_path / "out" / submission_file_name("va"), "va")) == TEST_VIDEOS

    # A sample that gives a video fewer frames than its crops is reported, not padded or cut.
    sample.write_text("\n".join(lines[: 1 + 2 * NUM_FRAMES - 20]) + "\n")
    sample.write_text(sample.read_text() + "".join(f"synth_001_left/{frame:05d}.jpg,\n" for frame in range(1, 21)))
    out = tmp_path / "again"
    assert submit("--data", sample_dir, "--model", unsmoothed_model, "--output", out) == 2
    assert not out.exists()


def test_tmf_submission_takes_audio_from_the_raw_video(release, tiny_tmf_dir, tmp_path):
    root, _ = release
    assert submit("--data", root, "--model", tiny_tmf_dir, "--output", tmp_path / "out") == 0
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == sorted(submission_file_name(name) for name in ("expr", "va"))
    va = read_submission(tmp_path / "out" / submission_file_name("va"), "va")
    assert list(va) == TEST_VIDEOS and all(len(values) == NUM_FRAMES for values in va.values())

    # Without the raw videos a TMF submission cannot hear its audio: refused before anything is written.
    silent = tmp_path / "silent"
    shutil.copytree(root, silent, ignore=shutil.ignore_patterns("videos"))
    sample_rows = [f"{video}/{frame:05d}.jpg," for video in TEST_VIDEOS for frame in range(1, NUM_FRAMES + 1)]
    for name in ("expr", "va"):  # the sample files give the frames, so only the audio needs the videos
        sample = silent / "test_set" / TASKS[name].sample_submission_files[0]
        sample.write_text("\n".join(["image_location", *sample_rows]) + "\n")
    assert submit("--data", silent, "--model", tiny_tmf_dir, "--output", tmp_path / "none") == 2
    assert not (tmp_path / "none").exists()


def test_bad_submissions_are_one_line_errors(release, unsmoothed_model, tiny_tmf_dir, tmp_path, capsys):
    root, _ = release
    # Two models predicting the same task.
    assert submit("--data", root, "--model", unsmoothed_model, "--model", tiny_tmf_dir, "--output", tmp_path) == 2
    assert "several models predict expr" in capsys.readouterr().err
    # Results already there are kept.
    out = tmp_path / "out"
    assert submit("--data", root, "--model", unsmoothed_model, "--output", out) == 0
    before = (out / submission_file_name("au")).read_bytes()
    assert submit("--data", root, "--model", unsmoothed_model, "--output", out) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / submission_file_name("au")).read_bytes() == before
    # A listed video the release does not have.
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    (broken / "test_set" / TASKS["expr"].test_list_file).write_text("synth_003\nsynth_999\n")
    assert submit("--data", broken, "--model", unsmoothed_model, "--output", tmp_path / "b") == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "synth_999" in errors[0]
    assert not (tmp_path / "b").exists()
