"""ABAW5/6 submission files: exact format, round trips, and the checks of both writers and the reader."""

import numpy as np
import pytest

from modeling_abaw.data import read_annotation, read_submission, write_submission, write_video_submissions
from modeling_abaw.errors import InputError
from modeling_abaw.tasks import EXPR

NUM_FRAMES = {"vid9": 3, "vid1_left": 2, "vid1_right": 1}  # test-list order, not sorted


def predictions(task: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    make = {
        "au": lambda n: rng.integers(0, 2, (n, 12)).astype(np.float32),
        "expr": lambda n: rng.integers(0, 8, n),
        "va": lambda n: rng.uniform(-1, 1, (n, 2)).astype(np.float32),
    }[task]
    return {video: make(count) for video, count in NUM_FRAMES.items()}


@pytest.mark.parametrize("task", ["au", "expr", "va"])
def test_submission_round_trip(tmp_path, task):
    written = predictions(task)
    path = write_submission(tmp_path / f"{task}.csv", task, written, NUM_FRAMES)
    read = read_submission(path, task)
    assert list(read) == list(NUM_FRAMES)
    for video in NUM_FRAMES:
        np.testing.assert_array_equal(read[video], written[video])
        assert read[video].dtype == written[video].dtype
    assert list(tmp_path.iterdir()) == [path]  # nothing left of the atomic write


@pytest.mark.parametrize("task", ["au", "expr", "va"])
def test_per_video_round_trip(tmp_path, task):
    written = predictions(task, seed=1)
    paths = write_video_submissions(tmp_path / "out", task, written, NUM_FRAMES)
    assert [path.name for path in paths] == [f"{video}.txt" for video in NUM_FRAMES]
    for path in paths:
        np.testing.assert_array_equal(read_annotation(path, task), written[path.stem])


def test_exact_format(tmp_path):
    expr = {"vid9": np.array([3, 0, 7]), "vid1_left": np.array([1, 1]), "vid1_right": np.array([6])}
    lines = write_submission(tmp_path / "expr.csv", "expr", expr, NUM_FRAMES).read_text().splitlines()
    assert lines[0] == "image_location," + ",".join(EXPR.labels)
    assert lines[1:] == [
        "vid9/00001.jpg,3",
        "vid9/00002.jpg,0",
        "vid9/00003.jpg,7",
        "vid1_left/00001.jpg,1",
        "vid1_left/00002.jpg,1",
        "vid1_right/00001.jpg,6",
    ]
    va = {video: np.full((count, 2), [0.3, -1.0], dtype=np.float32) for video, count in NUM_FRAMES.items()}
    lines = write_submission(tmp_path / "va.csv", "va", va, NUM_FRAMES).read_text().splitlines()
    assert lines[:2] == ["image_location,valence,arousal", "vid9/00001.jpg,0.3,-1.0"]
    au = {video: np.eye(12)[:count] for video, count in NUM_FRAMES.items()}
    lines = write_submission(tmp_path / "au.csv", "au", au, NUM_FRAMES).read_text().splitlines()
    assert lines[0] == "image_location,AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"
    assert lines[2] == "vid9/00002.jpg,0,1,0,0,0,0,0,0,0,0,0,0"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p.update(vid9=p["vid9"][:2]), "have shape (2,); expected one row per frame (3)"),
        (lambda p: p.pop("vid1_right"), "no predictions for test video 'vid1_right'"),
        (lambda p: p.update(extra=np.zeros(1)), "not in the test list: extra"),
        (lambda p: p["vid9"].__setitem__(1, -1), "predictions for 'vid9', frame 2: class index = -1 is out of range"),
    ],
)
def test_writer_checks_predictions(tmp_path, change, message):
    bad = predictions("expr")
    change(bad)
    with pytest.raises(InputError) as error:
        write_submission(tmp_path / "expr.csv", "expr", bad, NUM_FRAMES)
    assert message in str(error.value)
    assert not list(tmp_path.iterdir())  # nothing written


def test_writer_checks_ranges(tmp_path):
    au = predictions("au")
    au["vid1_left"][1, 3] = 0.7
    with pytest.raises(InputError, match="'vid1_left', frame 2: AU6 = 0.7 is out of range"):
        write_video_submissions(tmp_path, "au", au, NUM_FRAMES)
    va = predictions("va")
    va["vid9"][0, 0] = 1.5
    with pytest.raises(InputError, match="frame 1: valence = 1.5"):
        write_submission(tmp_path / "va.csv", "va", va, NUM_FRAMES)
    assert not list(tmp_path.iterdir())


HEADER = "image_location,valence,arousal\n"


@pytest.mark.parametrize(
    "body, message",
    [
        ("a/00001.jpg,0.1,0.2\na/00003.jpg,0.1,0.2\n", "line 3: frame 3 of 'a' where frame 2 was expected"),
        ("a/00002.jpg,0.1,0.2\n", "line 2: frame 2 of 'a' where frame 1"),
        ("a/00001.jpg,0.1,0.2\nb/00001.jpg,0.1,0.2\na/00002.jpg,0.1,0.2\n", "line 4: the rows of video 'a'"),
        ("a/1.jpg,0.1,0.2\n", "line 2: image_location 'a/1.jpg'"),
        ("a/00001.jpg,0.1\n", "line 2: expected 2 comma-separated values, found 1"),
        ("a/00001.jpg,0.1,-5\n", "line 2: arousal = -5 is out of range"),
    ],
)
def test_reader_names_line_and_problem(tmp_path, body, message):
    path = tmp_path / "va.csv"
    path.write_text(HEADER + body)
    with pytest.raises(InputError, match="va.csv") as error:
        read_submission(path, "va")
    assert message in str(error.value)


def test_reader_checks_header(tmp_path):
    path = tmp_path / "expr.csv"
    path.write_text("image_location,Neutral\nv/00001.jpg,0\n")
    with pytest.raises(InputError, match="line 1: header"):
        read_submission(path, "expr")
    path.write_text("")
    with pytest.raises(InputError, match="empty file"):
        read_submission(path, "expr")
