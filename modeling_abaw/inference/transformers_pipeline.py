"""`AffectPipeline` as a `transformers.pipeline` task, "facial-affect-analysis".

A model folder saved by the training stages (or `abaw push`) carries this file and a `custom_pipelines` entry in its
config.json (`save_custom_pipeline`), so that

    from transformers import pipeline
    analyse = pipeline(model="ORG/NAME", trust_remote_code=True)      # or a local folder
    table = analyse("interview.mp4")                                  # the per-frame pandas DataFrame

works wherever modeling-abaw is installed (the pipeline decodes video and audio, detects and tracks faces with this
package: unlike the modeling files, it is not self-contained, and transformers names the missing package when it is
not installed). `import modeling_abaw.inference.transformers_pipeline` registers the task, so that `pipeline(TASK,
model=...)` also runs a folder without the custom pipeline (e.g. saved by `save_pretrained`), with no remote code.

The options of `AffectPipeline` are call or construction keywords: `smoothing`, `all_faces`, `face_crops`,
`clip_stride`, `crop_batch_size` (`batch_size` is transformers' own, the number of inputs per forward).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from modeling_abaw.inference.pipeline import AffectPipeline
from modeling_abaw.io import atomic_path

TASK = "facial-affect-analysis"
# AffectPipeline's options, with the names a transformers pipeline call takes them by.
OPTIONS = {
    "smoothing": "smoothing",
    "all_faces": "all_faces",
    "face_crops": "face_crops",
    "clip_stride": "clip_stride",
    "crop_batch_size": "batch_size",
}


class AffectAnalysisPipeline(Pipeline):
    """A video or image path in, `AffectPipeline`'s per-frame table (a pandas DataFrame) out."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The model transformers loaded (possibly its remote-code copy) and, for TMF, its backbones. It runs in torch
        # in the dtype transformers loaded it in (`pipeline(..., dtype=...)`, transformers' way to choose it), not
        # in the path AffectPipeline's dtype "auto" would measure for this machine.
        self.affect = AffectPipeline.from_model(self.model, device=self.device, dtype=self.model.dtype, backend="torch")
        self._configured: dict[tuple, AffectPipeline] = {}

    def _sanitize_parameters(self, **kwargs):
        unknown = sorted(set(kwargs) - set(OPTIONS))
        if unknown:
            raise TypeError(f"{TASK} pipeline: unknown option(s) {unknown}; it takes {sorted(OPTIONS)}")
        return {}, {OPTIONS[name]: value for name, value in kwargs.items()}, {}

    def preprocess(self, inputs):
        # Decoding streams the file frame by frame inside AffectPipeline: only the path travels.
        return {"path": str(inputs)}

    def _forward(self, model_inputs, **options):
        return {"table": self._pipeline(options)(model_inputs["path"])}

    def postprocess(self, model_outputs):
        return model_outputs["table"]

    def _pipeline(self, options: dict) -> AffectPipeline:
        """The AffectPipeline with these options, sharing the loaded models (built once per set of options)."""
        if not options:
            return self.affect
        key = tuple(sorted((name, repr(value)) for name, value in options.items()))
        if key not in self._configured:
            affect = self.affect
            self._configured[key] = AffectPipeline(
                affect.model, affect.visual_model, affect.audio_extractors, encoder=affect.encoder, **options
            )
        return self._configured[key]


# Once: the copy a model folder carries registers nothing again when transformers loads it as remote code.
if TASK not in PIPELINE_REGISTRY.get_supported_tasks():
    PIPELINE_REGISTRY.register_pipeline(TASK, AffectAnalysisPipeline, pt_model=AutoModel, type="multimodal")


def save_custom_pipeline(model_dir: str | Path) -> None:
    """Put this pipeline into a saved model folder: this file beside the modeling code, and the `custom_pipelines`
    entry `transformers.pipeline(model=..., trust_remote_code=True)` reads from config.json (the entry
    `Pipeline.save_pretrained` would write, without saving the model a second time)."""
    model_dir = Path(model_dir)
    source = Path(__file__)
    with atomic_path(model_dir / source.name) as temporary:
        shutil.copyfile(source, temporary)
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["custom_pipelines"] = {
        TASK: {"impl": f"{source.stem}.{AffectAnalysisPipeline.__name__}", "pt": ["AutoModel"], "type": "multimodal"}
    }
    with atomic_path(config_path) as temporary:
        temporary.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
