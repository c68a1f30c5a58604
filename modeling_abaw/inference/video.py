"""Frames of an image or a video, decoded one at a time.

Videos are decoded with PyAV (any container and codec FFmpeg reads) and streamed: a frame is converted to RGB when
it is reached and dropped when the caller moves on, so memory does not grow with the video's length. Each frame
carries its presentation time in seconds (`frame.time`, i.e. pts x time base, on the container timeline that
`modeling_abaw.audio` also uses), so variable frame rate videos keep their real timing. The display rotation of
phone videos is applied, so faces are upright. Images are read with Pillow (EXIF orientation applied) and behave
as a one-frame video at time 0.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageOps

from ..data.affwild2 import VIDEO_EXTENSIONS as AFFWILD2_VIDEO_EXTENSIONS
from ..errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (*AFFWILD2_VIDEO_EXTENSIONS, ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp", ".gif")


class Frame(NamedTuple):
    """One decoded frame: presentation time (seconds) and RGB pixels (H, W, 3) uint8, upright."""

    time: float
    image: np.ndarray


@dataclass(frozen=True)
class Media:
    """An opened image or video; `frames()` decodes it again from the start on every call.

    Attributes:
        path: the file.
        width, height: size of the upright frames, in pixels.
        num_frames: frame count the container announces (None when it does not; it may be approximate).
        is_image: a still image (one frame, no audio).
    """

    path: Path
    width: int
    height: int
    num_frames: int | None
    is_image: bool

    def frames(self, max_side: int | None = None) -> Iterator[Frame]:
        """Decode every frame in order; `max_side` shrinks frames whose longer side exceeds it (for detection)."""
        scale = 1.0 if max_side is None else min(1.0, max_side / max(self.width, self.height))
        size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
        if self.is_image:
            image = _read_image(self.path)
            yield Frame(0.0, image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        else:
            yield from _decode_video(self.path, size, scale < 1.0)


def open_media(path: str | os.PathLike) -> Media:
    """Open an image or a video and read its size; raise InputError naming the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        height, width = _read_image(path).shape[:2]
        return Media(path, width, height, 1, is_image=True)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream (not an image or a video)")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            first = next(container.decode(stream), None)
    except av.error.FFmpegError as error:
        raise InputError(f"{path}: not a readable image or video ({_reason(error)})") from error
    if first is None or not width or not height:
        raise InputError(f"{path}: the video stream has no decodable frame (empty or truncated file)")
    if abs(first.rotation) in (90, 270):
        width, height = height, width
    return Media(path, width, height, stream.frames or None, is_image=False)


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InputError(f"{path}: not a readable image ({_reason(error)})") from error


def _decode_video(path: Path, size: tuple[int, int], resize: bool) -> Iterator[Frame]:
    """Stream the frames of the first video stream as upright RGB arrays of `size` (width, height, upright)."""
    index, previous_time = 0, None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame- and slice-threaded decoding; frames still come out in order
            step = 1.0 / float(stream.average_rate or stream.guessed_rate or 25)
            # One reformatter for the whole stream keeps its swscale context: `frame.to_ndarray(format=...)` sets
            # up a new one per frame, which costs ~1 ms, 20x the conversion itself.
            reformatter = VideoReformatter()
            for frame in container.decode(stream):
                turns = round(frame.rotation / 90) % 4
                # Scaling in swscale, during the RGB conversion, is the cheapest place to shrink frames.
                width, height = (size if turns % 2 == 0 else size[::-1]) if resize else (None, None)
                image = reformatter.reformat(frame, width, height, "rgb24", interpolation="AREA").to_ndarray()
                if turns:
                    image = np.ascontiguousarray(np.rot90(image, turns))
                # Some containers (raw streams, old AVIs) leave frames without a pts: continue the previous time.
                time = frame.time if frame.time is not None else (previous_time + step if index else 0.0)
                previous_time = time
                index += 1
                yield Frame(float(time), image)
    except av.error.FFmpegError as error:
        raise InputError(f"{path}: cannot decode frame {index + 1} ({_reason(error)})") from error


def _reason(error: Exception) -> str:
    """The first line of an error's message, without the file name PyAV repeats."""
    message = getattr(error, "strerror", None) or str(error)
    return message.splitlines()[0] if message else type(error).__name__
