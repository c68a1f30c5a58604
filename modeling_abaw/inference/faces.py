"""Face detection, tracking over time and face crops.

- `FaceDetector` is the interface: an RGB image in, face boxes out, each with the face's landmarks when the detector
  finds them (`alignment.LANDMARKS`). `face_detector()`'s default is MediaPipe's BlazeFace (`blazeface`, bundled,
  run by LiteRT), which finds turned and tilted faces with their eyes, nose and mouth; where LiteRT is not installed
  (it has no Windows wheels) it is OpenCV's frontal-face Haar cascade, which ships inside opencv-python and gives
  boxes only. Either works offline right after `pip install`; another detector plugs in by subclassing
  `FaceDetector`.
- `FaceTracker` follows faces through a video. Scanning a whole frame is the detector's expensive call, so it runs
  every `detect_every` frames, and on every frame while no face is followed or a followed face is lost. In between,
  each followed face is searched for only in a window around where it is expected (its last box moved on by its
  recent motion; for the Haar cascade shrunk so the face is three times its smallest: a third to a half of a full
  scan's cost), and the face is still measured on every frame. Boxes are linked to tracks by their overlap (IoU)
  with those expected boxes, so two faces that cross keep their identities and a track never jumps to another
  person; a face unseen for up to `max_gap` frames (hidden, missed) continues its track. A tracked face the detector
  finds far less surely than usual, or with its landmarks out of their usual layout (a hand over it), is left out
  of that frame, as if hidden; a track's first frames are judged so once it has a history.
- `FaceTracker.faces()` turns tracks into people: tracks sorted by prominence (the sum of their box areas: big and
  long-lived faces first); a track that never shares a frame with an earlier one continues it (a face that left the
  picture and came back, or was hidden for a while), otherwise it is another person. The first face is the main one.
- `crop_face` cuts the square the models see: aligned on the landmarks (`alignment.align_face`, the rule SynthAffect's
  crops are cut by) when the box has them, else `crop_around_box`: centred on the box, `crop_scale` times its side.
  The default 1.4 matches the aligned crops FaceMAE is trained on (measured on SynthAffect, whose `cropped_aligned`
  images follow Aff-Wild2's, the Haar box spans 0.70 +- 0.05 of the aligned crop's side, centred within 1% of it).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from itertools import islice
from typing import NamedTuple

import cv2
import numpy as np

from ..alignment import AlignedSquare, align_face, aligned_landmarks, aligned_square
from ..errors import InputError

HAAR_CASCADE = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
CROP_SCALE = 1.4
OCCLUSION_HISTORY = 25  # a tracked face's usual score and landmark layout: over its last this many boxes
MIN_OCCLUSION_HISTORY = 5  # boxes a track needs before its next ones are judged against them


class Box(NamedTuple):
    """A face in pixels: top-left corner, width, height, the detector's confidence (higher is surer) and, from a
    detector that finds them, the landmarks ((x, y) per name of `alignment.LANDMARKS`)."""

    x: float
    y: float
    w: float
    h: float
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def transformed(self, scale: float, dx: float = 0.0, dy: float = 0.0) -> Box:
        """The box after scaling an image by `scale` and then shifting it by (dx, dy)."""
        landmarks = None
        if self.landmarks is not None:
            landmarks = tuple((x * scale + dx, y * scale + dy) for x, y in self.landmarks)
        return Box(self.x * scale + dx, self.y * scale + dy, self.w * scale, self.h * scale, self.score, landmarks)

    def moved(self, dx: float, dy: float, size_change: float = 1.0) -> Box:
        """The box shifted by (dx, dy) and scaled by `size_change` about its centre (landmarks with it)."""
        cx, cy = self.centre
        landmarks = None
        if self.landmarks is not None:
            landmarks = tuple(
                (cx + dx + (x - cx) * size_change, cy + dy + (y - cy) * size_change) for x, y in self.landmarks
            )
        w, h = self.w * size_change, self.h * size_change
        return Box(cx + dx - w / 2, cy + dy - h / 2, w, h, self.score, landmarks)


def iou(a: Box, b: Box) -> float:
    width = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    height = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    overlap = max(width, 0.0) * max(height, 0.0)
    return overlap / (a.area + b.area - overlap) if overlap else 0.0


class FaceDetector(ABC):
    """Finds faces in an RGB image (H, W, 3) uint8, with their landmarks when it can."""

    search_radius: float = 0.75  # the tracker's window around a known face: this many box sides each way
    # A tracked face found with less than this fraction of its usual score is taken as covered (None: never); only
    # for a detector whose scores are probabilities that drop when a face is covered.
    occluded_score_ratio: float | None = None
    # A tracked face whose landmarks, in its aligned crop, lie more than this (root mean square, in crop sides) from
    # where they usually do is taken as covered (None: never): the detector guesses landmarks it cannot see.
    occluded_layout_change: float | None = None

    def search_scale(self, face_side: float) -> float:
        """How much the tracker shrinks the window it searches around a known face of this side (pixels) before
        calling the detector; 1: not at all."""
        return 1.0

    @abstractmethod
    def __call__(self, image: np.ndarray, min_size: float = 0, max_size: float = float("inf")) -> list[Box]:
        """Boxes of the faces in `image`, in its pixels. `min_size` and `max_size` bound the side of the faces
        wanted; a detector may use them to skip work, and must not return faces outside them."""


class HaarFaceDetector(FaceDetector):
    """OpenCV's Viola-Jones frontal-face cascade: no download, ~10-25 ms per 320x240 frame on a CPU core. It finds
    roughly frontal faces (up to ~30 degrees of yaw), from `min_face_size` pixels; boxes only (no landmarks), scored
    by the number of overlapping raw detections."""

    def __init__(
        self, min_face_size: int = 24, scale_factor: float = 1.1, min_neighbors: int = 4, cascade=HAAR_CASCADE
    ):
        self.cascade_file = cascade
        if cv2.CascadeClassifier(cascade).empty():
            raise FileNotFoundError(f"cannot load the Haar cascade {cascade}")
        self.min_face_size, self.scale_factor, self.min_neighbors = min_face_size, scale_factor, min_neighbors
        # A CascadeClassifier keeps per-call scratch state: one shared by threads (analyses served at once, e.g.
        # by the Space) corrupts it. Each thread loads its own, on first use.
        self._per_thread = threading.local()

    @property
    def cascade(self) -> cv2.CascadeClassifier:
        """This thread's classifier."""
        if not hasattr(self._per_thread, "cascade"):
            self._per_thread.cascade = cv2.CascadeClassifier(self.cascade_file)
        return self._per_thread.cascade

    def search_scale(self, face_side: float) -> float:
        """The cascade's cost grows with the pixels it scans: the window is shrunk so the face is 3x the smallest
        it finds (a third to a half of a full scan's cost)."""
        return min(1.0, 3 * self.min_face_size / face_side)

    def __call__(self, image: np.ndarray, min_size: float = 0, max_size: float = float("inf")) -> list[Box]:
        low = max(self.min_face_size, int(np.ceil(min_size)))
        high = int(min(max_size, *image.shape[:2]))
        if high < low:
            return []
        boxes, neighbours = self.cascade.detectMultiScale2(
            cv2.cvtColor(image, cv2.COLOR_RGB2GRAY),
            self.scale_factor,
            self.min_neighbors,
            minSize=(low, low),
            maxSize=(high, high),
        )
        return [Box(*map(float, box), float(count)) for box, count in zip(boxes, neighbours)]


FACE_DETECTORS = ("auto", "blazeface", "haar")


def face_detector(name: str = "auto") -> FaceDetector:
    """A detector by name: "blazeface", "haar", or "auto" (the default): BlazeFace when LiteRT, which runs it, is
    installed (a dependency wherever it has wheels), else the Haar cascade."""
    from .blazeface import BlazeFaceDetector, litert_available

    if name not in FACE_DETECTORS:
        raise InputError(f"face detector {name!r}: choose {', '.join(FACE_DETECTORS)}")
    if name == "haar" or (name == "auto" and not litert_available()):
        return HaarFaceDetector()
    if not litert_available():
        raise InputError("the blazeface detector needs LiteRT: pip install ai-edge-litert (no wheels for Windows)")
    return BlazeFaceDetector()


@dataclass
class FaceTrack:
    """One face over time: the frame indices (0-based) where it was found, with its box there, in frame order."""

    boxes: dict[int, Box] = field(default_factory=dict)
    _layouts: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def prominence(self) -> float:
        return sum(box.area for box in self.boxes.values())

    @property
    def last_frame(self) -> int:
        return next(reversed(self.boxes))

    def mean_centre(self) -> np.ndarray:
        return np.mean([box.centre for box in self.boxes.values()], axis=0)

    def layout(self, frame_index: int) -> np.ndarray:
        """The face's landmarks at that frame in its aligned crop (`alignment.aligned_landmarks`), computed once."""
        if frame_index not in self._layouts:
            self._layouts[frame_index] = aligned_landmarks(np.asarray(self.boxes[frame_index].landmarks))
        return self._layouts[frame_index]

    def expected_box(self, frame_index: int) -> Box:
        """Where the face should be at `frame_index`: its last box moved on at the pace (centre and size per frame)
        between its last two boxes."""
        newest = reversed(self.boxes)  # not list(self.boxes): that would cost the track's length on every frame
        last_frame = next(newest)
        previous_frame = next(newest, None)
        last = self.boxes[last_frame]
        if previous_frame is None:
            return last
        previous = self.boxes[previous_frame]
        ahead = (frame_index - last_frame) / (last_frame - previous_frame)
        (x0, y0), (x1, y1) = previous.centre, last.centre
        growth = (max(last.w, last.h) / max(previous.w, previous.h)) ** ahead
        return last.moved((x1 - x0) * ahead, (y1 - y0) * ahead, float(np.clip(growth, 0.5, 2.0)))


class FaceTracker:
    """Detects and follows faces frame by frame (module docstring); feed frames with `update`, then ask `faces()`.

    Args:
        detector: the face detector.
        detect_every: frames between full-frame scans while faces are followed (a face that enters the picture
            while another is followed is found within this many frames); 1 scans every frame.
        max_gap: frames a face may go unseen (hidden, missed) and still continue its track.
        iou_threshold: least overlap between where a track is expected and a detection for them to be the same face.
        search_radius: half-side of the window searched around a followed face, in face sides; None: the
            detector's `search_radius`.
    """

    def __init__(
        self,
        detector: FaceDetector,
        detect_every: int = 25,
        max_gap: int = 15,
        iou_threshold: float = 0.3,
        search_radius: float | None = None,
    ):
        if detect_every < 1 or max_gap < 0:
            raise ValueError(f"detect_every must be >= 1 and max_gap >= 0, got {detect_every} and {max_gap}")
        self.detector, self.detect_every, self.max_gap = detector, detect_every, max_gap
        self.iou_threshold = iou_threshold
        self.search_radius = detector.search_radius if search_radius is None else search_radius
        self.tracks: list[FaceTrack] = []
        self.active: list[FaceTrack] = []  # the tracks seen within the last `max_gap` + 1 frames
        self.frame_index = -1

    def update(self, image: np.ndarray) -> None:
        """Process the next frame."""
        self.frame_index += 1
        self.active = active = [t for t in self.active if self.frame_index - t.last_frame <= self.max_gap + 1]
        # A face lost in the previous frame may be anywhere by now (or back after an occlusion): scan it all.
        lost = any(track.last_frame < self.frame_index - 1 for track in active)
        full_scan = not active or lost or self.frame_index % self.detect_every == 0
        if full_scan:
            detections = self.detector(image)
        else:
            detections = [box for track in active for box in self._search_near(image, track)]
        expected = [track.expected_box(self.frame_index) for track in active]
        pairs = sorted(
            ((iou(box, detection), t, d) for t, box in enumerate(expected) for d, detection in enumerate(detections)),
            reverse=True,
        )
        matched_tracks, matched_detections = set(), set()
        for overlap, t, d in pairs:
            if overlap < self.iou_threshold:
                break
            if t not in matched_tracks and d not in matched_detections:
                if not self._looks_occluded(active[t], detections[d]):
                    active[t].boxes[self.frame_index] = detections[d]
                matched_tracks.add(t)
                matched_detections.add(d)
        if full_scan:  # a window search only re-finds known faces; new faces come from full scans
            new = [
                FaceTrack({self.frame_index: box}) for d, box in enumerate(detections) if d not in matched_detections
            ]
            self.tracks += new
            self.active += new

    def _looks_occluded(self, track: FaceTrack, box: Box) -> bool:
        """Something covers the face, and its crop would mislead the model: compared with the track's last
        `OCCLUSION_HISTORY` boxes, it is found much less surely than usual (under the detector's
        `occluded_score_ratio` of their median score), or its landmarks sit out of their usual layout (by more than
        the detector's `occluded_layout_change`). The frame is left without a box, so it takes the nearest face
        frame's predictions."""
        recent = list(islice(reversed(track.boxes), OCCLUSION_HISTORY))
        if len(recent) < MIN_OCCLUSION_HISTORY:
            return False
        ratio, change = self.detector.occluded_score_ratio, self.detector.occluded_layout_change
        if ratio is not None and box.score < ratio * float(np.median([track.boxes[i].score for i in recent])):
            return True
        if change is None or box.landmarks is None or track.boxes[recent[0]].landmarks is None:
            return False
        usual = np.median([track.layout(i) for i in recent], axis=0)
        offsets = aligned_landmarks(np.asarray(box.landmarks)) - usual
        return float(np.sqrt(np.mean(np.sum(offsets**2, axis=1)))) > change

    def _without_covered_start(self, track: FaceTrack) -> FaceTrack:
        """The track without those of its first boxes that look covered (`_looks_occluded`) against its first
        `OCCLUSION_HISTORY` boxes: they came before there was a history to judge them by (a video that starts
        with a hand over the face)."""
        history = FaceTrack(dict(islice(track.boxes.items(), OCCLUSION_HISTORY)))
        early = list(islice(track.boxes, MIN_OCCLUSION_HISTORY))
        covered = {index for index in early if self._looks_occluded(history, track.boxes[index])}
        if not covered:
            return track
        return FaceTrack({index: box for index, box in track.boxes.items() if index not in covered})

    def _search_near(self, image: np.ndarray, track: FaceTrack) -> list[Box]:
        """Faces of about the track's size in a window around where it is expected, shrunk as the detector likes."""
        box = track.expected_box(self.frame_index)
        side = max(box.w, box.h)
        (cx, cy), radius = box.centre, self.search_radius * side
        x0, y0 = max(0, int(cx - radius)), max(0, int(cy - radius))
        x1, y1 = min(image.shape[1], int(cx + radius) + 1), min(image.shape[0], int(cy + radius) + 1)
        if x1 <= x0 or y1 <= y0:  # expected outside the picture
            return []
        window = image[y0:y1, x0:x1]
        scale = self.detector.search_scale(side)
        if scale < 1.0:
            window = cv2.resize(window, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = self.detector(window, min_size=side * scale / 1.5, max_size=side * scale * 1.5)
        return [box.transformed(1 / scale, x0, y0) for box in found]

    def faces(self, min_frames: int = 5) -> list[FaceTrack]:
        """People in the video, main face first (module docstring). Tracks shorter than `min_frames` frames (or the
        whole video, if shorter) are dropped: detectors' false alarms rarely last."""
        min_frames = min(min_frames, self.frame_index + 1)
        tracks = (self._without_covered_start(track) for track in self.tracks)
        tracks = sorted((t for t in tracks if len(t.boxes) >= min_frames), key=lambda t: t.prominence, reverse=True)
        people: list[FaceTrack] = []
        for track in tracks:
            free = [person for person in people if not person.boxes.keys() & track.boxes.keys()]
            if free:
                nearest = min(free, key=lambda person: np.hypot(*(person.mean_centre() - track.mean_centre())))
                nearest.boxes.update(track.boxes)
            else:
                people.append(FaceTrack(dict(track.boxes)))
        people = [FaceTrack(dict(sorted(person.boxes.items()))) for person in people]
        return sorted(people, key=lambda person: person.prominence, reverse=True)


def crop_face(image: np.ndarray, box: Box, size: int, crop_scale: float = CROP_SCALE) -> np.ndarray:
    """The (size, size) crop the models see of the face in `box`: aligned on its landmarks (`alignment.align_face`)
    when it has them, else the square around the box (`crop_around_box`)."""
    if box.landmarks is not None:
        return align_face(image, np.asarray(box.landmarks), size)
    return crop_around_box(image, box, size, crop_scale)


def crop_square(box: Box, crop_scale: float = CROP_SCALE) -> AlignedSquare:
    """Where in the image `crop_face` cuts its crop: the aligned square of the landmarks, else the upright square
    `crop_scale` times the box's longer side, centred on it."""
    if box.landmarks is not None:
        return aligned_square(np.asarray(box.landmarks))
    return AlignedSquare(*box.centre, crop_scale * max(box.w, box.h), 0.0)


def crop_around_box(image: np.ndarray, box: Box, size: int, crop_scale: float = CROP_SCALE) -> np.ndarray:
    """The square of side `crop_scale` x the box's longer side centred on the box, resized to (size, size).

    Parts of the square outside the image repeat the border pixels (as SynthAffect's aligned crops do).
    """
    side = max(1, round(crop_scale * max(box.w, box.h)))
    cx, cy = box.centre
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    height, width = image.shape[:2]
    inside = image[max(y0, 0) : max(min(y0 + side, height), 0), max(x0, 0) : max(min(x0 + side, width), 0)]
    if inside.size == 0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} image")
    top, left = max(-y0, 0), max(-x0, 0)
    bottom, right = side - top - inside.shape[0], side - left - inside.shape[1]
    square = cv2.copyMakeBorder(inside, top, bottom, left, right, cv2.BORDER_REPLICATE)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)
