"""The one frame-timestamp rule (`modeling_abaw.media`): feature extraction (`video_frame_times`) and inference
(`Media.frames`, the pipeline's `timestamp` column) give the same times for the same file."""

import fractions

import av
import numpy as np
import pytest

from modeling_abaw.errors import InputError
from modeling_abaw.inference import AffectPipeline
from modeling_abaw.media import open_media, video_frame_times


def write_frames(path, pts, rate, container_format=None, codec="libx264"):
    """Grey 32x32 frames at `pts` (in 1/1000 s, or frame indices for a raw stream) through `codec`."""
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if container_format is None:
            stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for index, value in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * index % 255, np.uint8), format="rgb24")
            frame.pts = value
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decoded_times(path):
    return [frame.time for frame in open_media(path).frames()]


def test_variable_frame_rate_video_same_times_for_extraction_and_inference(tmp_path):
    pts = [0, 40, 70, 150, 160, 230]
    path = write_frames(tmp_path / "vfr.mp4", pts, rate=25)
    expected = np.asarray(pts) / 1000
    np.testing.assert_allclose(video_frame_times(path), expected, atol=1e-9)
    np.testing.assert_array_equal(video_frame_times(path), decoded_times(path))
    # Annotations may list more frames than the file decodes: they continue at the mean interval.
    np.testing.assert_allclose(video_frame_times(path, 8)[6:], 0.23 + 0.046 * np.arange(1, 3), atol=1e-9)
    np.testing.assert_array_equal(video_frame_times(path, 4), expected[:4])


def test_stream_without_pts_uses_its_frame_rate(tmp_path):
    """A raw H.264 stream has no timestamps: frames are 1 / (FFmpeg's guessed rate) apart, in both paths. (FFmpeg's
    `average_rate` of a raw stream is a 25 fps placeholder, which both paths used before, one of them with a 30 fps
    fallback besides.)"""
    path = write_frames(tmp_path / "raw.h264", range(6), rate=24, container_format="h264")
    np.testing.assert_allclose(video_frame_times(path), np.arange(6) / 24, atol=1e-9)
    np.testing.assert_array_equal(video_frame_times(path), decoded_times(path))


def test_pipeline_timestamps_are_the_extraction_times(tiny_synthaffect, tiny_face_mae_affect_dir):
    pipeline = AffectPipeline.from_pretrained(tiny_face_mae_affect_dir, device="cpu", dtype="float32")
    video = tiny_synthaffect / "videos" / "synth_002.mp4"
    table = pipeline(video)
    np.testing.assert_array_equal(table["timestamp"].to_numpy(), video_frame_times(video, len(table)))


def test_missing_and_unreadable_files_raise_input_errors(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video\n" * 50)
    for name in ("notes.mp4", "missing.mp4"):
        with pytest.raises(InputError, match=name):
            video_frame_times(tmp_path / name)
        with pytest.raises(InputError, match=name):
            open_media(tmp_path / name)
