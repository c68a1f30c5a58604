"""Face alignment: the one rule that cuts an aligned face crop out of a frame, from the face's landmarks.

The models are trained on aligned crops (Aff-Wild2's `cropped_aligned`, and SynthAffect's, which follow their
framing): the eyes level and the face at a fixed scale and place. The rule is a similarity transform (rotation,
uniform scale, shift) fitted by least squares from the face's landmarks to `ALIGNED_TEMPLATE`, where those landmarks
sit in an aligned crop. It is used wherever a crop is cut from a raw frame: the inference pipeline on detected
landmarks (`inference.faces.crop_face`), and SynthAffect's writer on the drawn face's own landmarks, so that a
dataset crop and a pipeline crop of the same face come from the same rule.

Landmarks are (N, 2) pixel coordinates in `LANDMARKS` order; the subject's right eye is the one on the image's left.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

LANDMARKS = ("right_eye", "left_eye", "nose_tip", "mouth_centre")
# Where the landmarks lie in an aligned crop, in units of its side (x right, y down): eye centres 0.24 apart at 43%
# of the height, the nose tip at 57.5%, the middle of the mouth at 69.5%. These are the rest positions of the
# average SynthAffect face (`data.synth.faces.rest_landmarks`; a test keeps the two equal), whose layout follows the
# official crops.
ALIGNED_TEMPLATE = np.array([[0.38, 0.43], [0.62, 0.43], [0.5, 0.575], [0.5, 0.695]])


class AlignedSquare(NamedTuple):
    """The square of a frame an aligned crop shows: centre and side (pixels), and its roll (degrees,
    counter-clockwise: a head tilted to the image's left has a positive roll)."""

    cx: float
    cy: float
    size: float
    angle: float

    def corners(self) -> np.ndarray:
        """(4, 2) corners in frame pixels, clockwise from the crop's top-left."""
        c, s = np.cos(np.radians(self.angle)), np.sin(np.radians(self.angle))
        half = self.size / 2
        # the crop's axes in the frame: x along (c, -s), y along (s, c) (y points down)
        offsets = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        return np.array([self.cx, self.cy]) + offsets @ np.array([[c, -s], [s, c]])


def alignment_transform(landmarks: np.ndarray, crop_size: int) -> np.ndarray:
    """The 2x3 similarity transform from frame pixels to the (crop_size x crop_size) aligned crop that maps the
    landmarks closest (least squares) to the template."""
    source = _as_complex(landmarks)
    target = _as_complex(ALIGNED_TEMPLATE[: len(source)] * crop_size)
    if len(source) < 2:
        raise ValueError(f"alignment needs at least the two eyes; got {len(source)} landmark(s)")
    # As complex numbers a similarity is z -> a z + b; least squares gives a from the centred points, b from means.
    centred = source - source.mean()
    a = np.vdot(centred, target - target.mean()) / np.vdot(centred, centred)  # vdot conjugates its first argument
    b = target.mean() - a * source.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def align_face(image: np.ndarray, landmarks: np.ndarray, crop_size: int) -> np.ndarray:
    """The aligned crop (crop_size x crop_size) of the face with these landmarks. Parts of the crop outside the
    image repeat the border pixels (as in the official crops)."""
    transform = alignment_transform(landmarks, crop_size)
    return cv2.warpAffine(image, transform, (crop_size, crop_size), borderMode=cv2.BORDER_REPLICATE)


def aligned_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Where the landmarks fall in their own aligned crop, in units of its side (as `ALIGNED_TEMPLATE`): the face's
    layout with its place, scale and roll taken out."""
    transform = alignment_transform(landmarks, 1)
    return np.asarray(landmarks) @ transform[:, :2].T + transform[:, 2]


def aligned_square(landmarks: np.ndarray) -> AlignedSquare:
    """Where in the frame the aligned crop of the face with these landmarks lies."""
    to_frame = cv2.invertAffineTransform(alignment_transform(landmarks, 1))
    cx, cy = to_frame @ [0.5, 0.5, 1.0]
    size = float(np.hypot(*to_frame[:, 0]))
    angle = float(np.degrees(np.arctan2(-to_frame[1, 0], to_frame[0, 0])))
    return AlignedSquare(float(cx), float(cy), size, angle)


def face_roll(landmarks: np.ndarray) -> float:
    """The face's roll (degrees, counter-clockwise as `AlignedSquare.angle`): the angle that levels its eyes."""
    return aligned_square(landmarks).angle


def _as_complex(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points[:, 0] + 1j * points[:, 1]
