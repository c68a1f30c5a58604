"""Inference on videos and images: decoding, face detection and tracking, the affect pipeline and its figure."""

from .faces import Box, FaceDetector, FaceTrack, FaceTracker, HaarFaceDetector, crop_face
from .pipeline import AffectPipeline, MissingAudioWarning, NoFaceWarning, resolve_device, resolve_dtype
from .video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Frame, Media, open_media

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "AffectPipeline",
    "Box",
    "FaceDetector",
    "FaceTrack",
    "FaceTracker",
    "Frame",
    "HaarFaceDetector",
    "Media",
    "MissingAudioWarning",
    "NoFaceWarning",
    "crop_face",
    "open_media",
    "resolve_device",
    "resolve_dtype",
]
