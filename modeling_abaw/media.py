"""Decoding of images, videos and their audio, and the one rule for the timestamps of a video's frames.

Videos and audio are decoded with PyAV (any container and codec FFmpeg reads). Everything here shares one timeline:
the container's, in seconds (pts x time base), which the audio samples and the video frames both live on, so audio
features line up with frames whatever the frame rate, variable frame rates included.

Frame timestamps (the rule both `abaw extract-features`, through `video_frame_times`, and `AffectPipeline`, through
`Media.frames`, follow, so a model sees at inference the frame times it was trained with):

* a frame's time is the presentation time of the *decoded* frame (`frame.time`), in decoding output order;
* when a frame has no pts (raw streams such as `.h264`, some old AVIs) it comes one frame interval after the
  previous frame (the first frame is at 0), the interval being 1 / the stream's frame rate as FFmpeg guesses it
  (`guessed_rate`, else `average_rate`), else 1 / `FALLBACK_FRAME_RATE`.

Video frames are streamed: a frame is converted to RGB when it is reached and dropped when the caller moves on, so
memory does not grow with the video's length. The display rotation of phone videos is applied, so faces are upright.
Images are read with Pillow (EXIF orientation applied) and behave as a one-frame video at time 0.

Audio is averaged to mono and resampled to 16 kHz float32; a file without an audio stream gives an *absent* clip
(an `AudioClip` with an empty waveform), so a silent video never stops a pipeline. `stream_audio` gives the same
samples in bounded pieces, for long videos.
"""

from __future__ import annotations

import itertools
import math
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

from .errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (
    ".mp4",
    ".avi",
    ".mkv",
    ".mov",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ts",
    ".wmv",
    ".flv",
    ".3gp",
    ".gif",
)
# Frame rate of the timestamp rule's last resort (a stream without pts and without a frame rate): Aff-Wild2's usual.
FALLBACK_FRAME_RATE = 30
SAMPLE_RATE = 16000
# Seconds of audio `stream_audio` decodes at a time: ~2 MB of 16 kHz float32 samples.
AUDIO_CHUNK_SECONDS = 30.0


# ------------------------------------------------------------------------------------------------------------ video


class Frame(NamedTuple):
    """One decoded frame: presentation time (seconds, container timeline) and RGB pixels (H, W, 3) uint8, upright."""

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
            image = read_image(self.path)
            yield Frame(0.0, image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            return
        # One reformatter for the whole stream keeps its swscale context: `frame.to_ndarray(format=...)` sets up a
        # new one per frame, which costs ~1 ms, 20x the conversion itself.
        reformatter = VideoReformatter()
        for time, frame in _decode_video(self.path):
            turns = round(frame.rotation / 90) % 4
            # Scaling in swscale, during the RGB conversion, is the cheapest place to shrink frames.
            width, height = (size if turns % 2 == 0 else size[::-1]) if scale < 1.0 else (None, None)
            image = reformatter.reformat(frame, width, height, "rgb24", interpolation="AREA").to_ndarray()
            if turns:
                image = np.ascontiguousarray(np.rot90(image, turns))
            yield Frame(time, image)


def open_media(path: str | os.PathLike) -> Media:
    """Open an image or a video and read its size; raise InputError naming the file when it is missing or cannot be
    read."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        height, width = read_image(path).shape[:2]
        return Media(path, width, height, 1, is_image=True)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream (not an image or a video)")
            # Everything the container gives is read inside this block: PyAV 18 closes a container's streams with it
            # (reading one afterwards raises), and PyAV 17 read freed memory there.
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            num_frames = stream.frames or None
            first = next(container.decode(stream), None)
            turned = first is not None and abs(first.rotation) in (90, 270)
    except av.error.FFmpegError as error:
        raise InputError(f"{path}: not a readable image or video ({_reason(error)})") from error
    if first is None or not width or not height:
        raise InputError(f"{path}: the video stream has no decodable frame (empty or truncated file)")
    if turned:
        width, height = height, width
    return Media(path, width, height, num_frames, is_image=False)


def video_frame_times(path: str | os.PathLike, num_frames: int | None = None) -> np.ndarray:
    """Timestamps (seconds, container timeline) of a video's frames, by the module's rule: the times `Media.frames`
    gives the same file. The frames are decoded but not converted.

    With `num_frames` (e.g. the frames of an annotation file, which may list more frames than the file decodes),
    the times of the first `num_frames` frames; frames past the file's end continue at its mean frame interval.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    times = np.fromiter((time for time, _ in _decode_video(path)), dtype=np.float64)
    if num_frames is None:
        return times
    times = times[:num_frames]
    if len(times) < num_frames:
        step = np.diff(times).mean() if len(times) > 1 else 1 / FALLBACK_FRAME_RATE
        last = times[-1] if len(times) else -step
        times = np.r_[times, last + step * np.arange(1, num_frames - len(times) + 1)]
    return times


def _decode_video(path: Path) -> Iterator[tuple[float, av.VideoFrame]]:
    """The frames of the first video stream with their timestamps (the module's rule)."""
    index, time = 0, 0.0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame- and slice-threaded decoding; frames still come out in order
            step = 1.0 / float(stream.guessed_rate or stream.average_rate or FALLBACK_FRAME_RATE)
            for frame in container.decode(stream):
                if frame.time is not None:
                    time = float(frame.time)
                elif index:
                    time += step
                index += 1
                yield time, frame
    except av.error.FFmpegError as error:
        raise InputError(f"{path}: cannot decode frame {index + 1} ({_reason(error)})") from error


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as upright RGB pixels (H, W, 3) uint8; InputError naming the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InputError(f"{path}: not a readable image ({_reason(error)})") from error


def _reason(error: Exception) -> str:
    """The first line of an error's message, without the file name PyAV repeats."""
    message = getattr(error, "strerror", None) or str(error)
    return message.splitlines()[0] if message else type(error).__name__


# ------------------------------------------------------------------------------------------------------------ audio


@dataclass(frozen=True)
class AudioClip:
    """Decoded mono audio.

    Attributes:
        waveform: (num_samples,) float32 in [-1, 1]; empty when the file has no audio (see `present`).
        sample_rate: samples per second of `waveform`.
        start_time: container time (seconds) of the first sample, to line features up with video frame times.
        path: the file it was decoded from, for messages.
    """

    waveform: np.ndarray
    sample_rate: int = SAMPLE_RATE
    start_time: float = 0.0
    path: str | None = None

    @classmethod
    def absent(cls, sample_rate: int = SAMPLE_RATE, path: str | None = None) -> AudioClip:
        """The clip of a file without audio."""
        return cls(np.zeros(0, np.float32), sample_rate, 0.0, path)

    @property
    def present(self) -> bool:
        return self.waveform.size > 0

    @property
    def duration(self) -> float:
        return self.waveform.size / self.sample_rate


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> AudioClip:
    """Decode the first audio stream of a media file to mono float32 at `sample_rate`, whole.

    Channels are averaged (as VGGish's reference input code does) rather than left to FFmpeg's downmix, which
    scales stereo by 1/sqrt(2) per channel and can leave [-1, 1]. A file without an audio stream returns an absent
    clip; a missing file or one PyAV cannot read raises InputError. `stream_audio` decodes the same samples a piece
    at a time.
    """
    clips = list(stream_audio(path, sample_rate, chunk_seconds=math.inf))
    return clips[0] if clips else AudioClip.absent(sample_rate, os.fspath(path))


def stream_audio(
    path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, chunk_seconds: float = AUDIO_CHUNK_SECONDS
) -> Iterator[AudioClip]:
    """The samples `load_audio` gives, as consecutive clips of at least `chunk_seconds` each (the last may be
    shorter), so a long file's audio is never in memory at once. A clip's `start_time` is the first clip's plus the
    duration of the clips before it: their concatenation is `load_audio`'s clip. A file without audio yields none.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    limit = chunk_seconds * sample_rate
    pieces, buffered, emitted, start_time = [], 0, 0, None

    def take() -> AudioClip:
        nonlocal pieces, buffered, emitted
        waveform = np.concatenate(pieces, axis=1).mean(axis=0, dtype=np.float32)
        clip = AudioClip(waveform, sample_rate, start_time + emitted / sample_rate, path)
        pieces, buffered, emitted = [], 0, emitted + len(waveform)
        return clip

    try:
        with av.open(path) as container:
            if not container.streams.audio:
                return
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", rate=sample_rate)
            for frame in itertools.chain(container.decode(stream), [None]):  # None flushes the resampler
                if frame is not None and start_time is None:
                    start_time = float(frame.time) if frame.time is not None else 0.0
                for resampled in resampler.resample(frame):
                    pieces.append(resampled.to_ndarray())
                    buffered += pieces[-1].shape[1]
                if buffered and buffered >= limit:
                    yield take()
    except av.error.FFmpegError as error:
        raise InputError(f"{path}: cannot decode audio ({_reason(error)})") from error
    if buffered:
        yield take()
