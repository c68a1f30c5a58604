"""The modeling-abaw Gradio Space: a video, an image or the webcam in; action units, expression and valence/arousal
per frame out (figure, table, CSV), through `modeling_abaw.inference.AffectPipeline`.

Run it with `python spaces/app.py` (or `make space`). The model comes from `ABAW_MODEL`: a Hub id or a local model
folder of a FaceMAEForAffect or TMFForAffect checkpoint; several, comma-separated, become a dropdown. Unset, it is
the checkpoint `abaw demo` trained (demo_output/), when there is one. Every model is loaded once, at start-up.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import NamedTuple

import av
import cv2
import gradio as gr
import numpy as np
import pandas as pd
import spaces  # ZeroGPU: `@spaces.GPU` holds a GPU for the call on a ZeroGPU Space; a no-op anywhere else

import modeling_abaw  # noqa: F401  (registers the package's models with the transformers Auto classes)
from modeling_abaw.errors import InputError
from modeling_abaw.hub.cards import AFF_WILD2, SYNTHAFFECT
from modeling_abaw.inference import AffectPipeline, MissingAudioWarning, NoFaceWarning
from modeling_abaw.inference.checkpoints import hub_options, model_reference
from modeling_abaw.inference.faces import crop_face
from modeling_abaw.inference.figures import plot_predictions
from modeling_abaw.inference.pipeline import table_face_box
from modeling_abaw.inference.tables import write_csv
from modeling_abaw.io import atomic_path
from modeling_abaw.media import IMAGE_EXTENSIONS, open_media
from modeling_abaw.tasks import TASKS

# Work limits of a shared Space (the load benchmark reads them). A 60 s clip at 30 fps is 1800 frames: about a
# minute of CPU for a ViT-Base, seconds on a GPU.
MAX_VIDEO_SECONDS = 60
MAX_UPLOAD_MB = 100
QUEUE_MAX_SIZE = 16  # requests waiting beyond the running ones; the next is told the queue is full
CONCURRENCY_LIMIT = 2  # analyses running at once (each one already uses every core through torch)
TIME_LIMIT_SECONDS = 300
# Uploads and results are deleted every hour once a day old (gradio's `delete_cache`: frequency, age).
CACHE_LIFETIME = (3600, 86400)
# glibc's mallopt parameter M_ARENA_MAX, and the arenas the server keeps (see `limit_malloc_arenas`).
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
# The live webcam sends a frame every LIVE_STREAM_EVERY seconds; see the README for the rate measured on a CPU.
LIVE_STREAM_EVERY = 0.25
LIVE_TOP_LABELS = 3  # labels shown per classification task in the live view

ROOT = Path(__file__).resolve().parent.parent
# The models `abaw demo` trains, used when ABAW_MODEL is unset: its frame model and its audio-visual TMF.
DEMO_MODELS = (ROOT / "demo_output" / "finetune" / "best", ROOT / "demo_output" / "tmf_audio_visual" / "best")
SPACE_CACHE = Path(os.environ.get("ABAW_SPACE_CACHE", Path(tempfile.gettempdir()) / "modeling-abaw-space"))
EXAMPLES_DIR = SPACE_CACHE / "examples"
RESULTS_DIR = SPACE_CACHE / "results"

# Every model the app serves, by its name in the dropdown (filled at start-up by `build_demo`).
SERVED_MODELS: dict[str, LoadedModel] = {}

NO_MODEL_MESSAGE = (
    "no model to load: set ABAW_MODEL to a FaceMAEForAffect or TMFForAffect checkpoint (a Hub id or a local folder; "
    "several, comma-separated, become a dropdown), or run `make demo` first to train the demo's model into "
    "demo_output/"
)


class LoadedModel(NamedTuple):
    """A model the Space serves: its pipeline and the Markdown that says what it is and what it was trained on."""

    reference: str
    pipeline: AffectPipeline
    description: str


def model_references(value: str | None) -> list[str]:
    """The models ABAW_MODEL names (comma-separated, blanks ignored); unset or empty: the demo's models that exist."""
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    return names or [str(path) for path in DEMO_MODELS if path.is_dir()]


def load_models(references: list[str]) -> dict[str, LoadedModel]:
    """Each model's pipeline, loaded once, by its reference; InputError (one line) for a model that cannot load."""
    if not references:
        raise InputError(NO_MODEL_MESSAGE)
    models = {}
    for name in references:
        reference = model_reference(name)
        # landmarks=True: the table keeps them, so that the crop of a chosen frame is re-cut as the model saw it
        pipeline = AffectPipeline.from_pretrained(reference, landmarks=True, progress=True)
        models[name] = LoadedModel(reference, pipeline, describe_model(name, reference, pipeline))
    return models


def training_record(reference: str) -> dict:
    """The model's training_info.json (what its card is written from); {} when it has none."""
    import json

    folder = Path(reference)
    if not folder.is_dir():
        from huggingface_hub import hf_hub_download

        try:
            folder = Path(hf_hub_download(reference, "training_info.json", **hub_options(reference))).parent
        except Exception:  # no such file in the repo, or not in the offline cache: no record
            return {}
    path = folder / "training_info.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def describe_model(name: str, reference: str, pipeline: AffectPipeline) -> str:
    """What the page says about a model: its class, tasks and inputs, and what it was trained on, with the terms and
    warnings of its training data (the notices of its model card)."""
    tasks = ", ".join(TASKS[task].name.upper() for task in pipeline.tasks)
    kind = type(pipeline.model).__name__
    config = pipeline.model.config
    inputs = "face crops, frame by frame"
    if pipeline.is_fusion:
        inputs = f"{config.clip_length}-frame clips of {', '.join(config.used_modalities)}"
    record = training_record(reference)
    if not record:
        trained_on = "It has no training record (training_info.json): what it was trained on is unknown."
    else:
        terms = SYNTHAFFECT if record.get("synthaffect") else AFF_WILD2
        trained_on = f"Trained on {terms.dataset_name} (stage `{record.get('stage', '?')}`). {terms.notice}"
    return (
        f"**Model:** `{name}` — {kind} ({tasks}; input: {inputs}).\n\n{trained_on}\n\n"
        "Predictions are only as good as the checkpoint."
    )


# ---------------------------------------------------------------------------------------------------- the analysis


def media_seconds(path: Path) -> float:
    """The duration of a video as its container states it (0 for an image or when it does not say)."""
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return 0.0
    with av.open(str(path)) as container:
        return (container.duration or 0) / av.time_base


def check_limits(path: Path) -> None:
    megabytes = path.stat().st_size / 2**20
    if megabytes > MAX_UPLOAD_MB:
        raise gr.Error(f"{path.name} is {megabytes:.0f} MB; this Space takes files up to {MAX_UPLOAD_MB} MB.")
    seconds = media_seconds(path)
    if seconds > MAX_VIDEO_SECONDS:
        raise gr.Error(
            f"{path.name} lasts {seconds:.0f} s; this Space analyses videos up to {MAX_VIDEO_SECONDS} s. "
            "Cut it shorter, or run `abaw predict` on your own machine (no limit)."
        )


def new_results_folder() -> Path:
    """A fresh folder for one request's CSV and figure; folders older than the cache lifetime are removed first
    (gradio serves copies of the results from its own cache, which `delete_cache` cleans)."""
    expired = time.time() - CACHE_LIFETIME[1]
    if RESULTS_DIR.is_dir():
        for folder in RESULTS_DIR.iterdir():
            if folder.stat().st_mtime < expired:
                shutil.rmtree(folder, ignore_errors=True)
    folder = RESULTS_DIR / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


@spaces.GPU(duration=TIME_LIMIT_SECONDS)
def predict(model_name: str, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The pipeline on one file, and its warnings (no face, no audio). On ZeroGPU this runs in a process holding the
    GPU, so it takes the model by name (the models are module state, not a pickled argument) and returns the
    warnings for the page to show."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = SERVED_MODELS[model_name].pipeline(path)
    shown = [warning for warning in caught if issubclass(warning.category, (NoFaceWarning, MissingAudioWarning))]
    return table, [str(warning.message) for warning in shown]


def analyze(media: str | None, model_name: str):
    """The `analyze` endpoint: (table, figure PNG, CSV file, face-crop frame slider) of a video or an image."""
    if not media:
        raise gr.Error("Upload a video or an image first (or record one with the webcam).")
    path = Path(media)
    try:
        open_media(path)
    except InputError as error:
        raise gr.Error(str(error).replace(str(path), path.name)) from None
    check_limits(path)
    try:
        table, messages = predict(model_name, path)
    except InputError as error:
        raise gr.Error(str(error).replace(str(path), path.name)) from None
    for message in messages:  # without the server's path of the upload
        gr.Warning(message.replace(str(path), path.name))
    folder = new_results_folder()
    name = path.stem
    csv_path, figure_path = folder / f"{name}.csv", folder / f"{name}.png"
    write_csv(table, csv_path)
    plot_predictions(table, figure_path, title=f"{path.name} - {model_name}")
    frames = int(table["frame"].max())
    first_face = int(table.loc[table["has_face"] == 1, "frame"].min()) if table["has_face"].any() else 1
    slider = gr.Slider(minimum=1, maximum=max(frames, 2), value=first_face, step=1, interactive=frames > 1)
    # The table shown is the CSV file itself, so the page, the download and `abaw predict` agree to the digit.
    return pd.read_csv(csv_path), str(figure_path), str(csv_path), slider, (str(path), table)


def face_crop(frame_number: int, analysed: tuple[str, pd.DataFrame] | None, model_name: str):
    """The face crop the model saw at one frame of the analysed input (None where no face was detected)."""
    if not analysed:
        return None
    path, table = analysed
    row = table[table["frame"] == int(frame_number)]
    if row.empty or not row["has_face"].iloc[0]:
        gr.Info(f"No face was detected at frame {int(frame_number)}.")
        return None
    box = table_face_box(row.iloc[0])
    pipeline = SERVED_MODELS[model_name].pipeline
    for index, frame in enumerate(open_media(path).frames(), start=1):
        if index == int(frame_number):
            return crop_face(frame.image, box, pipeline.image_size, pipeline.crop_scale)
    return None


def live_frame(image: np.ndarray | None, model_name: str):
    """One webcam frame: the frame with the face's box drawn, and the model's predictions for that face."""
    if image is None:
        return None, ""
    box, predictions = SERVED_MODELS[model_name].pipeline.predict_frame(image)
    if box is None:
        return image, "No face in view."
    shown = image.copy()
    x, y, w, h = (round(value) for value in box[:4])
    cv2.rectangle(shown, (x, y), (x + w, y + h), (0, 220, 0), max(2, image.shape[1] // 200))
    return shown, format_predictions(predictions)


def format_predictions(predictions: dict[str, np.ndarray]) -> str:
    """One line per task: the most probable labels of a classification task, every value of a regression task."""
    lines = []
    for name, values in predictions.items():
        task = TASKS[name]
        pairs = list(zip(task.labels, values.tolist()))
        if not task.is_regression:
            pairs = sorted(pairs, key=lambda pair: -pair[1])[:LIVE_TOP_LABELS]
        lines.append(f"**{task.name.upper()}** " + " · ".join(f"{label} {value:.2f}" for label, value in pairs))
    return "\n\n".join(lines)


# ----------------------------------------------------------------------------------------------------- examples


def make_examples(folder: Path) -> tuple[Path, Path]:
    """A short SynthAffect clip (with its voice) and one of its frames as an image, generated once into `folder`.
    SynthAffect's faces are drawn procedurally: they show the pipeline working, not a model's accuracy."""
    clip, image = folder / "synthaffect_clip.mp4", folder / "synthaffect_face.png"
    if clip.is_file() and image.is_file():
        return clip, image
    from modeling_abaw.data.synth import generate_synthaffect

    with tempfile.TemporaryDirectory() as scratch:
        generate_synthaffect(Path(scratch) / "synthaffect", num_videos=1, num_frames=90, seed=13)
        with atomic_path(clip) as temporary:
            shutil.copyfile(Path(scratch) / "synthaffect" / "videos" / "synth_000.mp4", temporary)
    first = next(open_media(clip).frames())
    with atomic_path(image) as temporary:
        cv2.imwrite(str(temporary), first.image[..., ::-1])
    return clip, image


# --------------------------------------------------------------------------------------------------------- the page

DESCRIPTION = """# Facial affect analysis: action units, expression, valence–arousal

Upload a video (its audio is used by audio-visual TMF models), an image, or record with the webcam. For every frame
the main face is detected and tracked, and the model predicts the probabilities of 12 action units, of 8
expressions, and valence/arousal — as in [Multi-modal Facial Affective Analysis based on Masked
Autoencoder](https://arxiv.org/abs/2303.10849) (ABAW5), with the modeling-abaw package.
Videos up to {seconds} s and {megabytes} MB. Frames without a detected face take the nearest face frame's
predictions (shaded grey in the figure, `has_face` 0 in the table)."""


def build_demo(models: list[str] | None = None) -> gr.Blocks:
    """The Space's page, serving `models` (references: Hub ids or folders; None: `ABAW_MODEL`, else the demo's
    models). Raises InputError when there is no model or one cannot be loaded."""
    loaded = load_models(model_references(os.environ.get("ABAW_MODEL")) if models is None else list(models))
    SERVED_MODELS.update(loaded)
    names = list(loaded)
    clip, image = make_examples(EXAMPLES_DIR)

    # gradio finds the progress tracker by its default value (its documented idiom): tqdm bars become progress.
    def run_analysis(media, model_name, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        return analyze(media, model_name)

    with gr.Blocks(title="modeling-abaw: facial affect analysis", delete_cache=CACHE_LIFETIME) as demo:
        gr.Markdown(DESCRIPTION.format(seconds=MAX_VIDEO_SECONDS, megabytes=MAX_UPLOAD_MB))
        model_choice = gr.Dropdown(
            names, value=names[0], label="Model", interactive=len(names) > 1, elem_id="model-choice"
        )
        model_info = gr.Markdown(loaded[names[0]].description, elem_id="model-info")
        # (file, table) of the last analysis, for the face crop of a chosen frame. Per session: API clients never end
        # theirs, so it expires with the uploads it points to.
        analysed = gr.State(time_to_live=CACHE_LIFETIME[1])
        # The results are shown below the input tabs; they are made first because the examples' cache needs them.
        figure = gr.Image(label="Predictions over time", type="filepath", elem_id="affect-figure", render=False)
        frame_number = gr.Slider(
            1, 2, value=1, step=1, label="Frame", interactive=False, elem_id="crop-frame", render=False
        )
        crop = gr.Image(label="The face crop the model saw", height=160, elem_id="face-crop", render=False)
        table = gr.Dataframe(label="Per-frame predictions", max_height=400, elem_id="frame-table", render=False)
        csv_file = gr.File(label="CSV (the file `abaw predict` writes)", elem_id="csv-download", render=False)
        outputs = [table, figure, csv_file, frame_number, analysed]
        examples = dict(outputs=outputs, fn=run_analysis, cache_examples=True, cache_mode="lazy", label="Example")

        with gr.Tabs():
            with gr.Tab("Video"):
                video = gr.Video(sources=["upload", "webcam"], include_audio=True, label="Video", elem_id="input-video")
                analyze_video = gr.Button("Analyse", variant="primary", elem_id="analyze-button")
                gr.Examples([[str(clip), names[0]]], inputs=[video, model_choice], **examples)
            with gr.Tab("Image"):
                picture = gr.Image(type="filepath", sources=["upload", "webcam"], label="Image", elem_id="input-image")
                analyze_image = gr.Button("Analyse the image", variant="primary", elem_id="analyze-image-button")
                gr.Examples([[str(image), names[0]]], inputs=[picture, model_choice], **examples)
            with gr.Tab("Live webcam"):
                gr.Markdown(
                    "Each webcam frame on its own, with the frame model (a TMF model answers with its visual "
                    "backbone): no tracking, no smoothing, no audio."
                )
                with gr.Row():
                    webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
                    live_view = gr.Image(label="Face found", elem_id="live-view")
                live_predictions = gr.Markdown(elem_id="live-predictions")
        figure.render()
        with gr.Row():
            frame_number.render()
            crop.render()
        table.render()
        csv_file.render()

        limits = dict(concurrency_limit=CONCURRENCY_LIMIT, time_limit=TIME_LIMIT_SECONDS)
        analyze_video.click(run_analysis, [video, model_choice], outputs, api_name="analyze", **limits)
        analyze_image.click(run_analysis, [picture, model_choice], outputs, api_name="analyze_image", **limits)
        model_choice.change(lambda name: loaded[name].description, model_choice, model_info, api_visibility="private")
        frame_number.release(
            face_crop,
            [frame_number, analysed, model_choice],
            crop,
            api_visibility="private",
        )
        webcam.stream(
            live_frame,
            [webcam, model_choice],
            [live_view, live_predictions],
            stream_every=LIVE_STREAM_EVERY,
            api_visibility="private",
            **limits,
        )
    return demo


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Cap glibc's malloc arenas for this server process. gradio runs each request in a worker thread and glibc gives
    threads arenas of their own, up to 8 per core, which fragment: on 8 concurrent users the server's RSS grew by ~27
    MB per round of 8 requests with no end in sight, and levelled off at ~850 MB with 2 arenas
    (benchmarks/bench_space.py, README). A no-op where the C library is not glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass


def main() -> None:
    """Serve the Space: on 127.0.0.1:7860 by default, GRADIO_SERVER_NAME / GRADIO_SERVER_PORT elsewhere (the Hub sets
    them)."""
    limit_malloc_arenas()
    try:
        demo = build_demo()
    except InputError as error:
        sys.exit(f"spaces/app.py: error: {error}")
    demo.queue(max_size=QUEUE_MAX_SIZE).launch(max_file_size=f"{MAX_UPLOAD_MB}mb")


if __name__ == "__main__":
    main()
