"""Inference on videos and images: face detection and tracking, checkpoint loading, the affect pipeline and its
figure. Decoding lives in `modeling_abaw.media`. Nothing here imports the training code."""

from .checkpoints import load_checkpoint, model_reference
from .faces import (
    Box,
    FaceDetector,
    FaceTrack,
    FaceTracker,
    HaarFaceDetector,
    crop_around_box,
    crop_face,
    face_detector,
)
from .pipeline import AffectPipeline, MissingAudioWarning, NoFaceWarning, resolve_device

__all__ = [
    "AffectPipeline",
    "Box",
    "FaceDetector",
    "FaceTrack",
    "FaceTracker",
    "HaarFaceDetector",
    "MissingAudioWarning",
    "NoFaceWarning",
    "crop_around_box",
    "crop_face",
    "face_detector",
    "load_checkpoint",
    "model_reference",
    "resolve_device",
]
