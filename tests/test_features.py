import json
import shutil

import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel

from modeling_abaw import TMFConfig, TMFForAffect
from modeling_abaw.cli import main
from modeling_abaw.data import AffWild2, ClipDataset
from modeling_abaw.evaluation import tmf_inputs
from modeling_abaw.features import FeatureCache, extract_features
from modeling_abaw.media import video_frame_times


def extract(tiny_synthaffect, tiny_face_mae_affect_dir, tiny_hubert_dir, tiny_vggish_dir, output):
    audio = [f"hubert:{tiny_hubert_dir}", f"vggish:{tiny_vggish_dir}"]
    return extract_features(tiny_synthaffect, tiny_face_mae_affect_dir, output, audio=audio, batch_size=16)


def test_cache_layout_and_contents(
    tiny_synthaffect, tiny_face_mae_affect_dir, tiny_hubert_dir, tiny_vggish_dir, tmp_path
):
    cache = extract(tiny_synthaffect, tiny_face_mae_affect_dir, tiny_hubert_dir, tiny_vggish_dir, tmp_path / "cache")
    dataset = AffWild2(tiny_synthaffect)
    annotated = dataset.videos(["train", "validation", "test"])
    assert cache.videos == annotated
    assert cache.modalities == {"mae": 32, "hubert": 16, "vggish": 8}
    index = json.loads((tmp_path / "cache" / "features.json").read_text())
    assert index["backbones"] == {
        "mae": {"model": tiny_face_mae_affect_dir},
        "hubert": {"model": tiny_hubert_dir, "layer": 2},  # the last of its 2 layers
        "vggish": {"model": tiny_vggish_dir, "example_hop_seconds": 0.96},
    }

    video = annotated[0]
    table = dataset.frame_table(["train", "validation", "test"], videos=[video])
    features = cache.load_features(video, 0, len(table))
    assert features["mae"].shape == (len(table), 32) and features["vggish"].shape == (len(table), 8)
    assert features["hubert_mask"].eq(1).all()  # SynthAffect videos have sound

    # The visual feature of a frame with a face is the model's pooled feature of its crop.
    model = AutoModel.from_pretrained(tiny_face_mae_affect_dir).eval()
    processor = AutoImageProcessor.from_pretrained(tiny_face_mae_affect_dir)
    row = int(np.flatnonzero(table["has_face"])[3])
    with torch.no_grad():
        expected = model(
            **processor(images=Image.open(table[row]["image_path"]).convert("RGB"), return_tensors="pt")
        ).features
    torch.testing.assert_close(features["mae"][row], expected[0], rtol=1e-4, atol=1e-5)
    # Frames without a face take the nearest face frame's feature.
    for missing in np.flatnonzero(~np.asarray(table["has_face"])):
        faces = np.flatnonzero(table["has_face"])
        nearest = faces[np.argmin(np.abs(faces - missing))]
        torch.testing.assert_close(features["mae"][missing], features["mae"][nearest])


def test_clip_batches_from_the_cache_feed_tmf(
    tiny_synthaffect, tiny_face_mae_affect_dir, tiny_hubert_dir, tiny_vggish_dir, tmp_path
):
    cache = extract(tiny_synthaffect, tiny_face_mae_affect_dir, tiny_hubert_dir, tiny_vggish_dir, tmp_path / "cache")
    frames = AffWild2(tiny_synthaffect).frame_table("train")
    clips = ClipDataset(frames, cache.load_features, clip_length=16)
    batch = torch.utils.data.default_collate([clips[i] for i in range(3)])
    config = TMFConfig(
        modalities=cache.modalities,
        backbones=cache.backbones,
        hidden_size=16,
        num_attention_heads=2,
        intermediate_size=32,
        num_hidden_layers=1,
        clip_length=16,
    )
    outputs = TMFForAffect(config)(
        **tmf_inputs(batch, config),
        attention_mask=batch["attention_mask"],
        au_labels=batch["au_labels"],
        expr_labels=batch["expr_labels"],
        va_labels=batch["va_labels"],
    )
    assert outputs.va.shape == (3, 16, 2) and torch.isfinite(outputs.loss)


def test_rerun_skips_done_videos_and_interrupted_writes_leave_nothing(
    tiny_synthaffect, tiny_face_mae_affect_dir, tmp_path, monkeypatch
):
    output = tmp_path / "cache"
    cache = extract_features(tiny_synthaffect, tiny_face_mae_affect_dir, output)
    done = {video: cache.video_path(video).stat().st_mtime_ns for video in cache.videos}
    removed = cache.videos[-1]
    cache.video_path(removed).unlink()

    # An interruption while writing a video leaves neither the video nor a temporary file behind.
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("modeling_abaw.features.save_file", interrupted)
    try:
        extract_features(tiny_synthaffect, tiny_face_mae_affect_dir, output)
    except KeyboardInterrupt:
        pass
    assert not cache.has(removed) and sorted(p.name for p in (output / "videos").iterdir()) == sorted(
        f"{v}.safetensors" for v in done if v != removed
    )
    monkeypatch.undo()

    extract_features(tiny_synthaffect, tiny_face_mae_affect_dir, output)
    assert cache.has(removed)
    assert all(cache.video_path(video).stat().st_mtime_ns == mtime for video, mtime in done.items() if video != removed)


def test_video_without_audio_gets_absent_features(
    tiny_synthaffect, tiny_face_mae_affect_dir, tiny_vggish_dir, tmp_path
):
    import av

    data = tmp_path / "data"
    shutil.copytree(tiny_synthaffect, data)
    video_file = sorted((data / "videos").glob("*.mp4"))[0]
    silent = tmp_path / "silent.mp4"
    with av.open(str(video_file)) as source, av.open(str(silent), "w") as target:
        stream = target.add_stream("h264", rate=30)
        stream.width, stream.height, stream.pix_fmt = (
            source.streams.video[0].width,
            source.streams.video[0].height,
            "yuv420p",
        )
        for frame in source.decode(video=0):
            target.mux(stream.encode(frame.reformat(format="yuv420p")))
        target.mux(stream.encode(None))
    shutil.move(silent, video_file)
    cache = extract_features(data, tiny_face_mae_affect_dir, tmp_path / "cache", audio=[f"vggish:{tiny_vggish_dir}"])
    affected = [video for video in cache.videos if video.startswith(video_file.stem)]
    for video in affected:
        features = cache.load_features(video, 0, 5)
        assert features["vggish_mask"].eq(0).all() and features["vggish"].eq(0).all()


def test_variable_frame_rate_times(tmp_path):
    import av

    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=1000)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.codec_context.time_base = stream.time_base = __import__("fractions").Fraction(1, 1000)
        for pts in (0, 40, 70, 150, 160):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, stream.time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    times = video_frame_times(path, 7)
    np.testing.assert_allclose(times[:5], [0, 0.04, 0.07, 0.15, 0.16], atol=1e-6)
    np.testing.assert_allclose(np.diff(times[4:]), 0.04, atol=1e-6)  # past the end: the mean interval


def test_cli_extracts_and_reports_bad_input(tiny_synthaffect, tiny_face_mae_affect_dir, tmp_path, capsys):
    assert (
        main(
            [
                "extract-features",
                "--data",
                str(tiny_synthaffect),
                "--visual",
                tiny_face_mae_affect_dir,
                "--output",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    assert "videos in" in capsys.readouterr().out
    assert FeatureCache(tmp_path / "cache").modalities == {"mae": 32}
    assert (
        main(
            [
                "extract-features",
                "--data",
                str(tmp_path / "missing"),
                "--visual",
                tiny_face_mae_affect_dir,
                "--output",
                str(tmp_path / "other"),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "missing" in error[0]
