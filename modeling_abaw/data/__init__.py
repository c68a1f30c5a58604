"""Aff-Wild2 data: the release reader and frame table, torch Datasets, k-fold splits, class weights, submissions."""

from .affwild2 import (
    SPLIT_DIRS,
    VIDEO_EXTENSIONS,
    AffWild2,
    find_annotation_root,
    find_raw_video,
    find_test_list,
    frame_features,
    raw_video_name,
    read_annotation,
    read_test_list,
)
from .datasets import ClipDataset, FrameDataset, IndexedDataset
from .splits import au_class_weights, au_pos_weights, expr_class_weights, inverse_frequency_weights, kfold_video_splits
from .submission import read_submission, write_submission, write_video_submissions

__all__ = [
    "SPLIT_DIRS",
    "VIDEO_EXTENSIONS",
    "AffWild2",
    "ClipDataset",
    "FrameDataset",
    "IndexedDataset",
    "au_class_weights",
    "au_pos_weights",
    "expr_class_weights",
    "find_annotation_root",
    "find_raw_video",
    "find_test_list",
    "frame_features",
    "inverse_frequency_weights",
    "kfold_video_splits",
    "raw_video_name",
    "read_annotation",
    "read_submission",
    "read_test_list",
    "write_submission",
    "write_video_submissions",
]
