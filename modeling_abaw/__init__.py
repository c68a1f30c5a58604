"""modeling-abaw: multi-modal facial affect analysis (ABAW) with FaceMAE and TMF, on the Hugging Face Hub.

Importing the package registers its configs and models with the transformers Auto classes, so
`AutoModel.from_pretrained(folder)` gives the package's classes without `trust_remote_code`. Every class marks
itself (`register_for_auto_class`, in its own module) so that a saved checkpoint carries an `auto_map` and its code,
loadable with `trust_remote_code=True` where this package is not installed.

The import stays cheap: the configuration modules are imported and registered at once, but the modeling modules
(which pull in `transformers.modeling_utils`, seconds of start-up) only when a model is first used. Why a stand-in
and not another mechanism: transformers' own lazy mapping (`_LazyAutoMapping`) only imports from
`transformers.models`, and its registrations (`_extra_content`) hold objects, so the Auto classes hold a
`_LazyModelClass` per model, which imports the real class on first use and registers it in its place. The public
model names (`from modeling_abaw import FaceMAEForAffect`) resolve through the module `__getattr__` (PEP 562).
"""

import importlib

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

from .configuration_face_mae import FaceMAEConfig, FaceMAEPreTrainingConfig
from .configuration_tmf import TMFConfig
from .configuration_vggish import VGGishConfig
from .tasks import TASKS, AffectTask, get_task

__version__ = "0.1.0"

# Each model: its modeling module, its config class and the Auto classes that map the config to it.
_MODELS = {
    "FaceMAEForAffect": ("modeling_face_mae", FaceMAEConfig, (AutoModel,)),
    "FaceMAEForPreTraining": ("modeling_face_mae", FaceMAEPreTrainingConfig, (AutoModel, AutoModelForPreTraining)),
    "TMFForAffect": ("modeling_tmf", TMFConfig, (AutoModel,)),
    "VGGishModel": ("modeling_vggish", VGGishConfig, (AutoModel,)),
}
# Other public names of the modeling modules, imported on first access.
_LAZY_FUNCTIONS = {"face_image_processor": "modeling_face_mae"}


class _LazyModelClass:
    """Stands in for a model class in the Auto mappings until it is used.

    It has what the Auto classes read before using a class (`config_class`, `__name__`, `__module__`, the last
    telling them it is not a transformers model); any other attribute (`from_pretrained`, `_from_config`, ...) or a
    call imports the modeling module, puts the real class into the Auto mappings in its place, and forwards to it.
    """

    def __init__(self, name: str, module: str, config_class, auto_classes):
        self.__name__ = self.__qualname__ = name
        self.__module__ = f"{__name__}.{module}"
        self.config_class = config_class
        self.auto_classes = auto_classes

    def resolve(self):
        model_class = getattr(importlib.import_module(self.__module__), self.__name__)
        for auto_class in self.auto_classes:
            auto_class.register(self.config_class, model_class, exist_ok=True)
        return model_class

    def __getattr__(self, attribute):
        return getattr(self.resolve(), attribute)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lazy {self.__module__}.{self.__name__}>"


_STAND_INS = {name: _LazyModelClass(name, *spec) for name, spec in _MODELS.items()}
for _stand_in in _STAND_INS.values():
    AutoConfig.register(_stand_in.config_class.model_type, _stand_in.config_class, exist_ok=True)
    for _auto_class in _stand_in.auto_classes:
        _auto_class.register(_stand_in.config_class, _stand_in, exist_ok=True)
del _stand_in, _auto_class


def __getattr__(name: str):
    if name in _STAND_INS:
        return _STAND_INS[name].resolve()
    if name in _LAZY_FUNCTIONS:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY_FUNCTIONS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TASKS",
    "AffectTask",
    "FaceMAEConfig",
    "FaceMAEForAffect",
    "FaceMAEForPreTraining",
    "FaceMAEPreTrainingConfig",
    "TMFConfig",
    "TMFForAffect",
    "VGGishConfig",
    "VGGishModel",
    "face_image_processor",
    "get_task",
]


def __dir__():
    return sorted(set(globals()) | set(__all__))
