"""The three ABAW tasks: what they are and how they behave, in one registry.

Everything task-specific in the package reads it from here instead of branching on a task's name: the label names
and their order, the "no label" marker and how it is detected, the label dtype and how many values an annotation line
holds, the model output key and its activation, the decision rule of the challenge (threshold or argmax), the name of
the challenge metric, the challenge folders and test lists, and the paper's smoothing parameters.

A flat module that imports only the standard library, so the Hub remote-code copies of the modeling files can import
it (`from .tasks import ...`) beside them. The methods that act on arrays use only operations numpy arrays and torch
tensors share (`!=`, `>=`, `.argmax(-1)`, `.sigmoid()` on tensors), so they serve the losses, the pipeline, the
metrics and the submission writer alike.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class AffectTask:
    """One ABAW challenge track.

    Attributes:
        name: short key used everywhere in the package ("au", "expr", "va").
        kind: "multilabel" (independent sigmoids), "multiclass" (softmax) or "regression" (bounded to [-1, 1]).
        labels: column names, in the order of the official annotation header and of the model outputs.
        invalid_value: the official marker of a missing label in annotation files (compared per element).
        challenge_dir: folder of the official annotations of this track.
        test_list_file: the official test-set list of this track (video names, one per line).
        sample_submission_files: the organisers' sample submission files of this track (ABAW6, then ABAW5): a header,
            then one `<video>/<frame>.jpg` row per frame to predict, which fixes the rows of a submission.
        metric_key: name of the challenge metric in metric dicts ("au_f1", ...); per-class values are
            `<metric_key>/<label>`.
        smoothing_sigma: the paper's gaussian-filter sigma (in frames) for this task (Sec. 4.4).
        smoothing_window: the paper's median/average-filter window (in frames) for this task (Sec. 4.4).
        threshold: for multilabel tasks, the probability at and above which a label is decided present (the
            challenge's 0.5).
        tmf_modalities: the feature sets TMF fuses for this task by default, the best of the paper's Table 8: the
            MAE visual feature alone for AU; MAE + HuBERT + VGGish for EXPR and VA.
    """

    name: str
    kind: str
    labels: tuple[str, ...]
    invalid_value: float
    challenge_dir: str
    test_list_file: str
    sample_submission_files: tuple[str, ...]
    metric_key: str
    smoothing_sigma: float
    smoothing_window: int
    threshold: float | None = None
    tmf_modalities: tuple[str, ...] = ("mae", "hubert", "vggish")

    def __post_init__(self):
        if self.kind not in TASK_KINDS:
            raise ValueError(f"Unknown task kind {self.kind!r}; choose from {', '.join(TASK_KINDS)}.")

    # -- shapes and types ----------------------------------------------------------------------------------------------

    @property
    def num_outputs(self) -> int:
        """Model outputs (logits or values) per frame."""
        return len(self.labels)

    @property
    def is_multiclass(self) -> bool:
        """One class per frame (labels are class indices) rather than one value per output."""
        return self.kind == "multiclass"

    @property
    def is_regression(self) -> bool:
        """Continuous values in [-1, 1] rather than probabilities and decisions."""
        return self.kind == "regression"

    @property
    def num_value_columns(self) -> int:
        """Values per frame in annotation and submission files: EXPR stores one class index, although its header
        names all classes; AU and VA one value per output."""
        return 1 if self.is_multiclass else self.num_outputs

    @property
    def label_dtype(self) -> str:
        """dtype name of label arrays: class indices are int64, AU and VA labels float32 (numpy and torch names)."""
        return "int64" if self.is_multiclass else "float32"

    def label_shape(self, num_frames: int) -> tuple[int, ...]:
        """Shape of the labels of `num_frames` frames: EXPR (N,), AU (N, 12), VA (N, 2)."""
        return (num_frames,) if self.is_multiclass else (num_frames, self.num_outputs)

    @property
    def label_key(self) -> str:
        """Frame-table column, batch key and model argument of the labels: `au_labels`, `expr_labels`, `va_labels`."""
        return f"{self.name}_labels"

    @property
    def valid_label_values(self) -> tuple[float, float, bool]:
        """(lowest, highest, integral) of a valid label: AU 0/1, EXPR 0..7, VA any number in [-1, 1]."""
        if self.is_regression:
            return -1.0, 1.0, False
        return 0, (1 if self.kind == "multilabel" else self.num_outputs - 1), True

    @property
    def class_weight_key(self) -> str | None:
        """Config field of the per-output loss weights, inversely proportional to each output's frequency in the
        training split (N_max / N_c): Eq. 1's W_j of both BCE terms of each AU (`au_class_weight`), the weight of each
        expression class in the cross-entropy (`expr_class_weight`); VA's CCC loss has none."""
        return None if self.is_regression else f"{self.name}_class_weight"

    @property
    def positive_weight_key(self) -> str | None:
        """Config field of the optional extra weights of the positive term of each output's BCE (`au_pos_weight`, the
        `pos_weight` of `binary_cross_entropy_with_logits`); only multilabel tasks have one. Ones (the default) give
        Eq. 1 exactly; negatives / positives re-weights every output to a 50/50 balance, a departure from the paper."""
        return f"{self.name}_pos_weight" if self.kind == "multilabel" else None

    @property
    def loss_weight_keys(self) -> tuple[str, ...]:
        """The config fields of all this task's loss weights (class weights, then positive weights)."""
        return tuple(key for key in (self.class_weight_key, self.positive_weight_key) if key is not None)

    def is_labelled(self, labels):
        """Elementwise: True where a label is given, False where it holds the "no label" marker (arrays or tensors)."""
        return labels != self.invalid_value

    # -- model outputs and decisions -----------------------------------------------------------------------------------

    @property
    def output_key(self) -> str:
        """Name of the task's output in `AffectOutput`: AU and EXPR logits, VA values."""
        return f"{self.name}_logits" if not self.is_regression else self.name

    @property
    def loss_key(self) -> str:
        """Name of the task's loss in `AffectOutput`: `au_loss`, `expr_loss`, `va_loss`."""
        return f"{self.name}_loss"

    def head_activation(self, head_output):
        """Applied inside the model to the task head's linear output: VA is bounded to [-1, 1] by tanh; AU and EXPR
        heads output logits."""
        return head_output.tanh() if self.is_regression else head_output

    @property
    def prediction_range(self) -> tuple[float, float]:
        """Bounds of `predictions`: probabilities in [0, 1], VA values in [-1, 1]."""
        return (-1.0, 1.0) if self.is_regression else (0.0, 1.0)

    def predictions(self, output):
        """Model output (torch tensor) -> what metrics, smoothing and tables take: AU probabilities (sigmoid),
        expression probabilities (softmax over classes), VA values as they are."""
        if self.kind == "multilabel":
            return output.sigmoid()
        if self.is_multiclass:
            return output.softmax(-1)
        return output

    def decisions(self, predictions):
        """Predictions -> the challenge's answer per frame: AU 0/1 (probability >= threshold), the expression class
        index (argmax), VA values. Works on numpy arrays and torch tensors of shape (..., num_outputs)."""
        if self.kind == "multilabel":
            return (predictions >= self.threshold) * 1
        if self.is_multiclass:
            return predictions.argmax(-1)
        return predictions


TASK_KINDS = ("multilabel", "multiclass", "regression")

AU = AffectTask(
    name="au",
    kind="multilabel",
    labels=("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26"),
    invalid_value=-1,
    challenge_dir="AU_Detection_Challenge",
    test_list_file="Action_Unit_Detection_Challenge_test_set_release.txt",
    sample_submission_files=("CVPR_6th_ABAW_AU_test_set_sample.txt", "CVPR_5th_ABAW_AU_test_set_sample.txt"),
    metric_key="au_f1",
    smoothing_sigma=5,
    smoothing_window=10,
    threshold=0.5,
    tmf_modalities=("mae",),
)
EXPR = AffectTask(
    name="expr",
    kind="multiclass",
    labels=("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"),
    invalid_value=-1,
    challenge_dir="EXPR_Recognition_Challenge",
    test_list_file="Expression_Recognition_Challenge_test_set_release.txt",
    sample_submission_files=("CVPR_6th_ABAW_Expr_test_set_sample.txt", "CVPR_5th_ABAW_Expr_test_set_sample.txt"),
    metric_key="expr_f1",
    smoothing_sigma=25,
    smoothing_window=25,
)
VA = AffectTask(
    name="va",
    kind="regression",
    labels=("valence", "arousal"),
    invalid_value=-5,
    challenge_dir="VA_Estimation_Challenge",
    test_list_file="Valence_Arousal_Estimation_Challenge_test_set_release.txt",
    sample_submission_files=("CVPR_6th_ABAW_VA_test_set_sample.txt", "CVPR_5th_ABAW_VA_test_set_sample.txt"),
    metric_key="va_ccc",
    smoothing_sigma=25,
    smoothing_window=50,
)

TASKS: dict[str, AffectTask] = {task.name: task for task in (AU, EXPR, VA)}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)

# The largest |difference| of a task prediction (AU and expression probabilities, VA values) from torch float32 that
# a faster way of running a model may make: `auto` keeps only the encoder paths within it (inference.backends) and an
# ONNX export must meet it (`abaw export`). At 0.01 a decision changes only for a probability within 0.01 of its
# threshold. Here, beside the predictions it bounds, because the command-line help states it without importing torch.
PROBABILITY_TOLERANCE = 0.01


def get_task(name: str) -> AffectTask:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"Unknown task {name!r}; the ABAW tasks are {', '.join(TASK_NAMES)}.") from None


def validate_tasks(tasks) -> list[str]:
    """Return `tasks` as a list in registry order, with a clear error for unknown or missing names."""
    if isinstance(tasks, str):
        tasks = [tasks]
    tasks = list(tasks)
    if not tasks:
        raise ValueError(f"At least one task is needed; choose from {', '.join(TASK_NAMES)}.")
    for name in tasks:
        get_task(name)
    return [name for name in TASK_NAMES if name in tasks]


def task_label_names(tasks=TASK_NAMES) -> list[str]:
    """The output names of `tasks`, concatenated in registry order (e.g. a model's `id2label`)."""
    return [label for name in validate_tasks(tasks) for label in TASKS[name].labels]


# The temporal filters of the post-processing (paper Sec. 4.4) and the name of each one's parameter.
SMOOTHING_FILTERS: dict[str, str | None] = {"gaussian": "sigma", "median": "window", "average": "window", "none": None}


def default_smoothing_policy(tasks=TASK_NAMES, filter_name: str = "gaussian") -> dict[str, dict]:
    """The paper's post-processing for `tasks`: `filter_name` with this registry's per-task sigma or window.

    Policies are plain JSON-able dicts so that model configs can store them; `modeling_abaw.smoothing`
    validates and applies them.
    """
    if filter_name not in SMOOTHING_FILTERS:
        raise ValueError(f"Unknown smoothing filter {filter_name!r}; choose from {', '.join(SMOOTHING_FILTERS)}.")
    parameter = SMOOTHING_FILTERS[filter_name]
    policy = {}
    for name in validate_tasks(tasks):
        spec = {"filter": filter_name}
        if parameter == "sigma":
            spec["sigma"] = float(TASKS[name].smoothing_sigma)
        elif parameter == "window":
            spec["window"] = int(TASKS[name].smoothing_window)
        policy[name] = spec
    return policy
