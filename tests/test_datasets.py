"""FrameDataset and ClipDataset on the fake Aff-Wild2 tree of test_affwild2."""

import numpy as np
import pytest
import torch
from test_affwild2 import write_fake_affwild2
from torch.utils.data import DataLoader
from transformers import ViTImageProcessor

from modeling_abaw.data import AffWild2, ClipDataset, FrameDataset
from modeling_abaw.errors import InputError
from modeling_abaw.tasks import AU, EXPR, VA


def to_tensor(image):
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)


@pytest.fixture
def train_frames(tmp_path):
    write_fake_affwild2(tmp_path)
    return AffWild2(tmp_path).frame_table("train")


def test_frame_dataset_items_and_batches(train_frames):
    dataset = FrameDataset(train_frames, to_tensor)
    assert len(dataset) == 4 + 3 + 3  # vidA without its faceless frames 3 and 6, both halves of vidB, not vidD
    item = dataset[2]
    assert (item["video"], item["frame"]) == ("vidA", 4)
    assert item["pixel_values"].shape == (3, 8, 8) and item["pixel_values"].dtype == torch.float32
    assert item["pixel_values"][0].mean() == pytest.approx(80 / 255, abs=0.05)  # frame 4 was drawn with red 80
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch["pixel_values"].shape == (4, 3, 8, 8)
    assert batch["au_labels"].shape == (4, 12) and batch["au_labels"].dtype == torch.float32
    assert batch["expr_labels"].shape == (4,) and batch["expr_labels"].dtype == torch.long
    assert batch["va_labels"].shape == (4, 2) and batch["va_labels"].dtype == torch.float32
    assert batch["video"] == ["vidA"] * 4 and batch["frame"].tolist() == [1, 2, 4, 5]
    assert batch["expr_labels"][3] == EXPR.invalid_value and (batch["va_labels"] == VA.invalid_value).all()


def test_frame_dataset_with_image_processor_and_task_subset(train_frames):
    processor = ViTImageProcessor(size={"height": 16, "width": 16})
    dataset = FrameDataset(train_frames, processor, tasks="au")
    item = dataset[0]
    assert item["pixel_values"].shape == (3, 16, 16)
    assert "au_labels" in item and "expr_labels" not in item and "va_labels" not in item
    labelled = FrameDataset(train_frames, to_tensor, tasks="va", labelled_only=True)
    assert [(labelled[i]["video"], labelled[i]["frame"]) for i in range(len(labelled))] == [
        ("vidB_left", 1),
        ("vidB_left", 2),  # vidB_left's last VA frame is -5; other train videos have no VA
    ]
    with pytest.raises(InputError, match="va_labels"):
        FrameDataset(train_frames.remove_columns("va_labels"), to_tensor, tasks=["au", "va"])


def features(video, start, stop):
    """Per-frame features whose value is the frame number, to check alignment."""
    frames = torch.arange(start + 1, stop + 1, dtype=torch.float32)
    return {"visual_features": frames[:, None].repeat(1, 3), "audio_features": frames[:, None].repeat(1, 2)}


def test_clip_dataset_tiles_and_pads(train_frames):
    dataset = ClipDataset(train_frames, features, clip_length=4)
    # vidA: 6 frames -> 2 clips; vidB_left / vidB_right / vidD: 3 frames -> 1 padded clip each
    assert [(video, row, length) for video, row, length in dataset.clips] == [
        ("vidA", 0, 4),
        ("vidA", 4, 2),
        ("vidB_left", 6, 3),
        ("vidB_right", 9, 3),
        ("vidD", 12, 3),
    ]
    item = dataset[1]
    assert item["video"] == "vidA"
    assert item["frame"].tolist() == [5, 6, 0, 0]
    assert item["attention_mask"].tolist() == [1, 1, 0, 0]
    assert item["has_face"].tolist() == [1, 0, 0, 0]
    assert item["au_labels"].shape == (4, 12) and (item["au_labels"][2:] == AU.invalid_value).all()
    assert item["expr_labels"].tolist() == [-1, -1, -1, -1]  # vidA's EXPR file ends at frame 4, then padding
    assert (item["va_labels"] == VA.invalid_value).all()
    assert item["visual_features"][:, 0].tolist() == [5, 6, 0, 0] and item["audio_features"].shape == (4, 2)

    batch = next(iter(DataLoader(dataset, batch_size=3)))
    assert batch["au_labels"].shape == (3, 4, 12) and batch["expr_labels"].shape == (3, 4)
    assert batch["va_labels"].shape == (3, 4, 2) and batch["attention_mask"].shape == (3, 4)
    assert batch["visual_features"].shape == (3, 4, 3) and batch["video"] == ["vidA", "vidA", "vidB_left"]


def test_clip_dataset_stride_and_defaults(train_frames):
    overlapping = ClipDataset(train_frames, clip_length=4, stride=2, tasks="expr")
    assert [clip for clip in overlapping.clips if clip[0] == "vidA"] == [("vidA", 0, 4), ("vidA", 2, 4)]
    assert set(overlapping[0]) == {"video", "frame", "attention_mask", "has_face", "expr_labels"}
    default = ClipDataset(train_frames)
    assert len(default) == 4 and default[0]["attention_mask"].shape == (100,)  # one clip per video, K = 100
    assert default[0]["attention_mask"].sum() == 6


def test_clip_dataset_rejects_bad_tables_and_loaders(train_frames):
    with pytest.raises(InputError, match="frame order"):
        ClipDataset(train_frames.shuffle(seed=0))
    with pytest.raises(InputError, match="positive"):
        ClipDataset(train_frames, stride=0)
    with pytest.raises(InputError, match=r"load_features\('vidA', 0, 4\)"):
        ClipDataset(train_frames, lambda video, start, stop: {"x": torch.zeros(3, 2)}, clip_length=4)[0]
    videos = train_frames.filter(lambda row: row["video"] in ("vidA", "vidD"))  # selecting whole videos is fine
    assert len(ClipDataset(videos, clip_length=4)) == 3
