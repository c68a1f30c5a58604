"""SynthAffect as a Hub dataset repository: `datasets.load_dataset` reads it without a script (frames with crops and
labels, the official markers kept), the Aff-Wild2 layout stays usable, and the card says what it is."""

import json
from pathlib import Path

import numpy as np
import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard
from PIL import Image

from modeling_abaw.cli import main
from modeling_abaw.data import AffWild2
from modeling_abaw.errors import InputError
from modeling_abaw.hub.synthaffect import build_synthaffect_repo
from modeling_abaw.tasks import TASK_NAMES, TASKS

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def repo(tiny_synthaffect, tmp_path_factory):
    return build_synthaffect_repo(tiny_synthaffect, tmp_path_factory.mktemp("hub") / "synthaffect", "org/synth")


def test_load_dataset_reads_every_annotated_frame_with_its_crop_and_labels(repo, tiny_synthaffect, tmp_path):
    # Its own cache: datasets keys a local folder's cache by the folder's name and file names, so a folder of the
    # same name from an earlier run (another SynthAffect) would be read back instead.
    frames = load_dataset(str(repo), cache_dir=str(tmp_path / "datasets-cache"))
    data = AffWild2(tiny_synthaffect)
    assert sorted(frames) == ["test", "train", "validation"]
    for split, table in frames.items():
        expected = data.frame_table(split, TASK_NAMES).with_format("numpy")
        assert len(table) == len(expected)
        columns = table.with_format("numpy")
        for name in ("video", "frame", "has_face", *(TASKS[task].label_key for task in TASK_NAMES)):
            np.testing.assert_array_equal(columns[name][:], expected[name][:])
        images = table["image"]
        has_face = columns["has_face"][:]
        assert all((image is None) == (not face) for image, face in zip(images, has_face))
        first = int(np.flatnonzero(has_face)[0])
        on_disk = Image.open(data.image_dir(expected["video"][first]) / f"{expected['frame'][first]:05d}.jpg")
        np.testing.assert_array_equal(np.asarray(images[first]), np.asarray(on_disk))  # the same JPEG bytes
    # The official layout is in the repository too: a root the training stages read.
    assert AffWild2(repo).videos("train") == data.videos("train")


def test_the_card_says_what_it_is(repo):
    card = DatasetCard.load(repo / "README.md")
    assert card.data.license == "apache-2.0" and "image-classification" in card.data.task_categories
    assert card.data.configs[0]["data_files"][0]["path"] == "frames/train.parquet"
    assert "not a benchmark" in card.text and 'load_dataset("org/synth")' in card.text


def test_bad_sources_and_outputs_are_one_line_errors(repo, tiny_synthaffect, tmp_path):
    with pytest.raises(InputError, match="not a SynthAffect folder"):
        build_synthaffect_repo(tmp_path, tmp_path / "out")
    with pytest.raises(InputError, match="already exists"):
        build_synthaffect_repo(tiny_synthaffect, repo)


LOAD_FROM_HUB = """
import json, sys
import datasets
frames = datasets.load_dataset(sys.argv[1])
print(json.dumps({split: len(table) for split, table in frames.items()}))
"""


def test_push_synthaffect_to_the_loopback_hub_and_load_it_back(loopback_hub, tiny_synthaffect, tmp_path):
    pushed = loopback_hub.run_client(
        [
            str(REPOSITORY / "hub_scripts" / "push_synthaffect.py"),
            "--data",
            str(tiny_synthaffect),
            "--repo-id",
            "org/synthaffect",
            "--tag",
            "v0.1",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPOSITORY)},
    )
    assert pushed.returncode == 0, pushed.stderr
    commits = loopback_hub.commits("org/synthaffect", "dataset")
    assert len(commits) == 2  # the repo's creation, then the one upload commit
    commit = commits[-1]
    assert {"README.md", "frames/train.parquet", "synthaffect.json", "videos/synth_000.mp4"} <= set(commit.files)
    assert loopback_hub.repo("org/synthaffect", "dataset").tags == {"v0.1": commit.oid}
    (tmp_path / "client.py").write_text(LOAD_FROM_HUB)
    loaded = loopback_hub.run_client(["client.py", "org/synthaffect"], cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    sizes = {split: len(AffWild2(tiny_synthaffect).frame_table(split)) for split in ("train", "validation", "test")}
    assert json.loads(loaded.stdout.splitlines()[-1]) == sizes


def test_synth_push_errors_are_one_line(tiny_synthaffect, tmp_path, capsys):
    assert main(["push-synthaffect", "--data", str(tmp_path / "none"), "--repo-id", "org/x"]) == 2
    assert main(["push-synthaffect", "--data", str(tiny_synthaffect), "--repo-id", "not a repo"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "no such folder" in errors[0] and "not a Hub repo id" in errors[1]
