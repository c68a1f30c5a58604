"""Audio decoding (files written here with PyAV), alignment to video frames and the HuBERT / wav2vec2 / VGGish
extractors on tiny locally built checkpoints."""

import fractions
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import TINY_SSL_AUDIO
from transformers import HubertModel, Wav2Vec2Config, Wav2Vec2Model

from modeling_abaw.audio import AudioFeatures, align_to_frames, load_audio_extractor, parse_audio_argument
from modeling_abaw.configuration_vggish import VGGishConfig
from modeling_abaw.errors import InputError
from modeling_abaw.inference.streaming import StreamedAudio
from modeling_abaw.media import AudioClip, load_audio, stream_audio
from modeling_abaw.modeling_vggish import VGGishModel


def write_audio(path, channels: np.ndarray, rate: int, codec: str, start_seconds: float = 0.0):
    """Encode (num_channels, num_samples) float samples into `path` with PyAV."""
    layout = {1: "mono", 2: "stereo"}[len(channels)]
    time_base = fractions.Fraction(1, rate)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        stream.time_base = time_base
        for start in range(0, channels.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(channels[:, start : start + 1024], dtype=np.float32), format="fltp", layout=layout
            )
            frame.sample_rate, frame.time_base = rate, time_base
            frame.pts = start + round(start_seconds * rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def sine(frequency, seconds, rate, amplitude=0.5):
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def spectrum(waveform, rate=16000):
    """(frequencies, amplitudes) of a real signal; a full-scale sine of amplitude A peaks at A."""
    amplitudes = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform)))) * 2 / np.hanning(len(waveform)).sum()
    return np.fft.rfftfreq(len(waveform), 1 / rate), amplitudes


def dominant_frequency(waveform, rate=16000):
    frequencies, amplitudes = spectrum(waveform, rate)
    return frequencies[np.argmax(amplitudes)]


@pytest.mark.parametrize(
    "suffix, codec, rate",
    [("wav", "pcm_s16le", 44100), ("wav", "pcm_s16le", 48000), ("flac", "flac", 44100), ("mkv", "flac", 48000)],
)
def test_lossless_sources_resample_to_16k_mono(tmp_path, suffix, codec, rate):
    path = tmp_path / f"tone.{suffix}"
    write_audio(path, np.stack([sine(1000, 2.0, rate)] * 2), rate, codec)
    clip = load_audio(path)
    assert clip.present and clip.sample_rate == 16000 and clip.waveform.dtype == np.float32
    assert clip.waveform.shape == (32000,) and clip.duration == pytest.approx(2.0)
    assert clip.start_time == 0.0 and clip.path == str(path)
    assert dominant_frequency(clip.waveform) == pytest.approx(1000, abs=2)
    assert np.abs(clip.waveform).max() == pytest.approx(0.5, abs=0.01)


def test_lossy_sources_decode(tmp_path):
    for suffix, codec in (("mp4", "aac"), ("mp3", "mp3")):
        path = tmp_path / f"tone.{suffix}"
        write_audio(path, sine(440, 2.0, 48000)[None], 48000, codec)
        clip = load_audio(path)
        # Encoder priming and frame padding may add a few tens of milliseconds.
        assert clip.duration == pytest.approx(2.0, abs=0.1)
        assert dominant_frequency(clip.waveform) == pytest.approx(440, abs=3)


def test_stereo_is_averaged(tmp_path):
    path = tmp_path / "stereo.wav"
    write_audio(path, np.stack([sine(440, 1.0, 44100, 0.4), sine(1500, 1.0, 44100, 0.4)]), 44100, "pcm_s16le")
    frequencies, amplitudes = spectrum(load_audio(path).waveform)
    for frequency in (440, 1500):
        # The mean of the channels, not FFmpeg's 1/sqrt(2) downmix (which would give 0.28).
        assert amplitudes[np.argmin(np.abs(frequencies - frequency))] == pytest.approx(0.2, abs=0.01)


def test_sweep_and_silence(tmp_path):
    rate, seconds = 48000, 2.0
    t = np.arange(round(seconds * rate)) / rate
    f0, f1 = 200.0, 6000.0  # linear chirp: instantaneous frequency f0 + (f1 - f0) t / seconds
    chirp = 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))
    write_audio(tmp_path / "sweep.wav", chirp[None], rate, "pcm_s16le")
    clip = load_audio(tmp_path / "sweep.wav")
    for centre in (0.5, 1.0, 1.5):
        window = clip.waveform[round((centre - 0.05) * 16000) : round((centre + 0.05) * 16000)]
        assert dominant_frequency(window) == pytest.approx(f0 + (f1 - f0) * centre / seconds, abs=150)

    write_audio(tmp_path / "silence.wav", np.zeros((2, 24000)), 48000, "pcm_s16le")
    silence = load_audio(tmp_path / "silence.wav")
    assert silence.present and silence.duration == pytest.approx(0.5) and not silence.waveform.any()


def test_start_time_comes_from_the_stream(tmp_path):
    path = tmp_path / "late.mkv"
    write_audio(path, sine(1000, 1.0, 48000)[None], 48000, "flac", start_seconds=0.5)
    clip = load_audio(path)
    assert clip.start_time == pytest.approx(0.5) and clip.duration == pytest.approx(1.0)


def test_video_without_audio_is_absent(tmp_path):
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(5):
            image = np.full((32, 32, 3), index * 40, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    clip = load_audio(path)
    assert not clip.present and clip.duration == 0.0

    aligned = align_to_frames(AudioFeatures(np.zeros((0, 6), np.float32), np.zeros(0)), np.arange(5) / 25)
    assert aligned.values.shape == (5, 6) and not aligned.values.any() and not aligned.mask.any()


def test_unreadable_files(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(InputError, match="notes.mp4"):
        load_audio(path)
    with pytest.raises(InputError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav")


def linear_features(timestamps):
    """Features that are linear in time, so interpolation must reproduce them exactly inside the range."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    return AudioFeatures(np.stack([timestamps, 1 - 2 * timestamps], axis=1).astype(np.float32), timestamps)


@pytest.mark.parametrize("fps", [25, 30, 29.97])
def test_alignment_at_constant_frame_rates(fps):
    features = linear_features(0.0125 + 0.02 * np.arange(500))  # HuBERT-like grid over 10 s
    frame_times = np.arange(int(9.9 * fps)) / fps
    aligned = align_to_frames(features, frame_times)
    inside = frame_times >= features.timestamps[0]
    expected = np.stack([frame_times, 1 - 2 * frame_times], axis=1)
    np.testing.assert_allclose(aligned.values[inside], expected[inside], atol=1e-5)
    np.testing.assert_allclose(aligned.values[~inside], features.values[[0] * (~inside).sum()])  # clamped
    assert aligned.values.dtype == np.float32 and aligned.mask.tolist() == [1] * len(frame_times)


def test_alignment_with_variable_frame_rate_and_short_audio():
    features = linear_features(0.4875 + 0.96 * np.arange(5))  # VGGish-like grid, audio ends near 4.8 s
    rng = np.random.default_rng(0)
    frame_times = np.cumsum(rng.uniform(1 / 60, 1 / 10, size=120))  # runs far past the audio
    aligned = align_to_frames(features, frame_times)
    inside = (frame_times >= features.timestamps[0]) & (frame_times <= features.timestamps[-1])
    np.testing.assert_allclose(aligned.values[inside, 0], frame_times[inside], atol=1e-5)
    after_audio = frame_times > features.timestamps[-1]
    assert after_audio.sum() > 10
    np.testing.assert_array_equal(aligned.values[after_audio], np.repeat(features.values[-1:], after_audio.sum(), 0))
    # Order of the frames does not matter, and a single feature is held everywhere.
    shuffled = rng.permutation(len(frame_times))
    np.testing.assert_allclose(align_to_frames(features, frame_times[shuffled]).values, aligned.values[shuffled])
    single = align_to_frames(linear_features([1.0]), [0.0, 1.0, 7.0])
    np.testing.assert_array_equal(single.values, np.tile([[1.0, -1.0]], (3, 1)))
    with pytest.raises(ValueError, match="NaN"):
        align_to_frames(features, [0.0, float("nan")])


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-wav2vec2")
    torch.manual_seed(1)
    Wav2Vec2Model(Wav2Vec2Config(**TINY_SSL_AUDIO, do_stable_layer_norm=True)).save_pretrained(path)
    return str(path)


def noise_clip(seconds, start_time=0.0, seed=0):
    waveform = np.random.default_rng(seed).normal(0, 0.1, round(seconds * 16000)).astype(np.float32)
    return AudioClip(waveform, 16000, start_time)


def reference_hidden_states(model, waveform, layer):
    with torch.no_grad():
        return model(torch.from_numpy(waveform)[None], output_hidden_states=True).hidden_states[layer][0].numpy()


def test_hubert_extractor_matches_the_model(tiny_hubert_dir):
    extractor = load_audio_extractor("hubert", tiny_hubert_dir)
    assert (extractor.name, extractor.model_id, extractor.feature_size) == ("hubert", tiny_hubert_dir, 16)
    assert extractor.feature_extractor is not None

    clip = noise_clip(0.5, start_time=1.25)
    features = extractor(clip)
    num_frames = 1 + (8000 - 45) // 20
    assert features.values.shape == (num_frames, 16)
    np.testing.assert_allclose(features.timestamps, 1.25 + (20 * np.arange(num_frames) + 22.5) / 16000)
    normalised = (clip.waveform - clip.waveform.mean()) / np.sqrt(clip.waveform.var() + 1e-7)
    model = HubertModel.from_pretrained(tiny_hubert_dir).eval()
    np.testing.assert_allclose(features.values, reference_hidden_states(model, normalised, -1), atol=1e-4)

    first_layer = load_audio_extractor("hubert", tiny_hubert_dir, layer=0)(clip)
    np.testing.assert_allclose(first_layer.values, reference_hidden_states(model, normalised, 0), atol=1e-4)
    with pytest.raises(InputError, match="layer 3"):
        load_audio_extractor("hubert", tiny_hubert_dir, layer=3)


def test_wav2vec2_without_preprocessor_uses_raw_audio(tiny_wav2vec2):
    extractor = load_audio_extractor("wav2vec2", tiny_wav2vec2, layer=-2)
    assert extractor.feature_extractor is None and extractor.layer == 1
    clip = noise_clip(0.3, seed=1)
    model = Wav2Vec2Model.from_pretrained(tiny_wav2vec2).eval()
    np.testing.assert_allclose(extractor(clip).values, reference_hidden_states(model, clip.waveform, 1), atol=1e-4)


def test_chunking_is_seamless(tiny_hubert_dir):
    # Layer 0 depends only on nearby samples (conv encoder with layer norm + positional conv of 8 frames), so with
    # enough context the chunked features must equal the whole-clip ones; a chunk of 0.05 s is 40 frames.
    clip = noise_clip(1.0, seed=2)
    whole = load_audio_extractor("hubert", tiny_hubert_dir, layer=0, chunk_seconds=100)(clip)
    chunked = load_audio_extractor("hubert", tiny_hubert_dir, layer=0, chunk_seconds=0.05, context_seconds=0.01)(clip)
    np.testing.assert_array_equal(chunked.timestamps, whole.timestamps)
    np.testing.assert_allclose(chunked.values, whole.values, atol=1e-5)
    assert np.all(np.diff(chunked.timestamps) == pytest.approx(20 / 16000))


def test_absent_and_very_short_audio(tiny_hubert_dir):
    extractor = load_audio_extractor("hubert", tiny_hubert_dir)
    absent = extractor(AudioClip(np.zeros(0, np.float32), 16000, 0.0))
    assert not absent.present and absent.values.shape == (0, 16) and absent.timestamps.shape == (0,)
    short = extractor(noise_clip(0.001))  # 16 samples, shorter than one 45-sample window: padded to one frame
    assert short.values.shape == (1, 16)
    with pytest.raises(ValueError, match="16000 Hz"):
        extractor(AudioClip(np.zeros(100, np.float32), 8000, 0.0))
    with pytest.raises(InputError, match="mfcc"):
        load_audio_extractor("mfcc")


def test_vggish_extractor_end_to_end(tmp_path):
    torch.manual_seed(0)
    config = VGGishConfig(block_channels=[4, 8, 8, 16], embedding_hidden_size=32, embedding_size=8)
    VGGishModel(config).save_pretrained(tmp_path / "vggish")
    path = tmp_path / "speech.wav"
    rng = np.random.default_rng(3)
    write_audio(path, rng.uniform(-0.5, 0.5, (1, 48000 * 4)), 48000, "pcm_s16le", start_seconds=0.2)
    clip = load_audio(path)

    extractor = load_audio_extractor("vggish", tmp_path / "vggish")
    features = extractor(clip)
    assert features.values.shape == (4, 8) and extractor.feature_size == 8
    np.testing.assert_allclose(features.timestamps, clip.start_time + 0.4875 + 0.96 * np.arange(4))
    # One example per chunk gives exactly the same embeddings.
    chunked = load_audio_extractor("vggish", tmp_path / "vggish", chunk_seconds=0.5)(clip)
    np.testing.assert_array_equal(chunked.values, features.values)
    dense = load_audio_extractor("vggish", tmp_path / "vggish", example_hop_seconds=0.48)(clip)
    assert len(dense.values) == 1 + (64000 - 15600) // 7680

    aligned = align_to_frames(features, clip.start_time + np.arange(100) / 25)
    assert aligned.values.shape == (100, 8) and aligned.mask.all()


def test_logmel_extractor_is_the_vggish_front_end_on_the_frame_grid():
    from modeling_abaw.configuration_vggish import VGGishConfig
    from modeling_abaw.modeling_vggish import log_mel_spectrogram

    clip = noise_clip(2.0, start_time=0.5)
    extractor = load_audio_extractor("logmel", chunk_seconds=0.5)
    features = extractor(clip)
    expected = log_mel_spectrogram(torch.from_numpy(clip.waveform), VGGishConfig()).numpy()
    np.testing.assert_allclose(features.values, expected, rtol=1e-5, atol=1e-5)  # chunking is exact
    assert features.values.shape[1] == 64 and extractor.backbone == {"model": None}
    np.testing.assert_allclose(features.timestamps[:2], [0.5 + 0.0125, 0.5 + 0.0225])


def test_backbone_specs_rebuild_their_extractors(tiny_hubert_dir, tiny_vggish_dir):
    """Defect D2: what an extractor records (`backbone`, copied into features.json and TMF configs) is what
    `load_audio_extractor` takes back; the weightless logmel records no model."""
    clip = noise_clip(1.0)
    extractors = [
        load_audio_extractor("hubert", tiny_hubert_dir, layer=1),
        load_audio_extractor("vggish", tiny_vggish_dir, example_hop_seconds=0.48),
        load_audio_extractor("logmel"),
    ]
    assert [extractor.backbone for extractor in extractors] == [
        {"model": tiny_hubert_dir, "layer": 1},
        {"model": tiny_vggish_dir, "example_hop_seconds": 0.48},
        {"model": None},
    ]
    for extractor in extractors:
        rebuilt = load_audio_extractor(extractor.name, **extractor.backbone)
        np.testing.assert_array_equal(rebuilt(clip).values, extractor(clip).values)
    with pytest.raises(InputError, match="logmel.*no weights"):
        load_audio_extractor("logmel", "vggish-log-mel")
    with pytest.raises(InputError, match="hubert backbone.*no-such-folder"):
        load_audio_extractor("hubert", str(Path(tiny_hubert_dir) / "no-such-folder"))


def test_command_line_audio_arguments():
    assert parse_audio_argument("hubert") == ("hubert", "facebook/hubert-base-ls960")
    assert parse_audio_argument(" vggish:./vggish ") == ("vggish", "./vggish")
    assert parse_audio_argument("logmel") == ("logmel", None)


@pytest.mark.parametrize("name", ["hubert", "logmel", "vggish"])
def test_streamed_audio_gives_the_whole_files_features(tmp_path, name, tiny_hubert_dir, tiny_vggish_dir):
    """A long video's audio is decoded and featurised a piece at a time (`stream_audio` + `extractor.stream`); the
    features, and the rows aligned to frames, are the whole file's. HuBERT's input normalisation uses the whole
    clip's mean and variance, gathered over the pieces."""
    path = tmp_path / "speech.wav"
    rng = np.random.default_rng(4)
    write_audio(path, rng.uniform(-0.5, 0.5, (2, 48000 * 3)), 48000, "pcm_s16le", start_seconds=0.1)
    whole_clip = load_audio(path)
    pieces = list(stream_audio(path, chunk_seconds=0.25))
    assert len(pieces) >= 10 and all(piece.duration >= 0.25 for piece in pieces[:-1])
    np.testing.assert_array_equal(np.concatenate([piece.waveform for piece in pieces]), whole_clip.waveform)
    np.testing.assert_allclose([piece.start_time for piece in pieces[1:]],
                               [piece.start_time + piece.duration for piece in pieces[:-1]])  # fmt: skip

    model = {"hubert": tiny_hubert_dir, "logmel": None, "vggish": tiny_vggish_dir}[name]
    options = {
        "hubert": {"layer": 0, "chunk_seconds": 0.2, "context_seconds": 0.05},
        "logmel": {"chunk_seconds": 0.2},
        "vggish": {"chunk_seconds": 1.0},  # one 0.96 s example per chunk
    }[name]
    extractor = load_audio_extractor(name, model, **options)
    whole = extractor(whole_clip)
    streamed = list(extractor.stream(lambda: stream_audio(path, chunk_seconds=0.25)))
    assert len(streamed) > 1
    np.testing.assert_array_equal(np.concatenate([piece.timestamps for piece in streamed]), whole.timestamps)
    np.testing.assert_allclose(np.concatenate([piece.values for piece in streamed]), whole.values, atol=1e-5)

    # Aligned a few frames at a time, as clips ask for them: the rows `align_to_frames` gives the whole file.
    times = np.arange(0, 3.4, 1 / 30)  # past the audio's end: the last feature, as align_to_frames clamps
    audio = StreamedAudio({name: extractor}, path, times)
    rows = []
    for first in range(0, len(times), 13):
        rows.append(audio.frames(first, min(first + 13, len(times)))[name])
        audio.release(0, first + 13)
        assert len(audio.rows[name]) <= 13  # released rows are dropped
    expected = align_to_frames(whole, times).values
    np.testing.assert_allclose(np.concatenate(rows), expected, atol=1e-5)
    assert audio.present and not StreamedAudio({name: extractor}, None, times).present
