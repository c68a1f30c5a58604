"""The three ABAW tasks: label names, "no label" markers and the paper's per-task settings.

This is the single registry of task definitions for the whole package. It is a flat module that imports
nothing but the standard library, so the Hub remote-code copies of the modeling files can import it
(`from .tasks import ...`) beside them.
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
        smoothing_sigma: the paper's gaussian-filter sigma (in frames) for this task (Sec. 4.4).
        smoothing_window: the paper's median/average-filter window (in frames) for this task (Sec. 4.4).
    """

    name: str
    kind: str
    labels: tuple[str, ...]
    invalid_value: float
    challenge_dir: str
    smoothing_sigma: float
    smoothing_window: int

    @property
    def num_outputs(self) -> int:
        return len(self.labels)


AU = AffectTask(
    name="au",
    kind="multilabel",
    labels=("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26"),
    invalid_value=-1,
    challenge_dir="AU_Detection_Challenge",
    smoothing_sigma=5,
    smoothing_window=10,
)
EXPR = AffectTask(
    name="expr",
    kind="multiclass",
    labels=("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"),
    invalid_value=-1,
    challenge_dir="EXPR_Recognition_Challenge",
    smoothing_sigma=25,
    smoothing_window=25,
)
VA = AffectTask(
    name="va",
    kind="regression",
    labels=("valence", "arousal"),
    invalid_value=-5,
    challenge_dir="VA_Estimation_Challenge",
    smoothing_sigma=25,
    smoothing_window=50,
)

TASKS: dict[str, AffectTask] = {task.name: task for task in (AU, EXPR, VA)}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)


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
