"""modeling-abaw: multi-modal facial affect analysis (ABAW) with FaceMAE and TMF, on the Hugging Face Hub.

Importing the package registers its configs and models with the transformers Auto classes, and marks them so that
every saved checkpoint carries an `auto_map` plus its modeling code (loadable with `trust_remote_code=True` where
this package is not installed).
"""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

from .configuration_face_mae import FaceMAEConfig, FaceMAEPreTrainingConfig
from .configuration_tmf import TMFConfig
from .configuration_vggish import VGGishConfig
from .modeling_face_mae import FaceMAEForAffect, FaceMAEForPreTraining, face_image_processor
from .modeling_tmf import TMFForAffect
from .modeling_vggish import VGGishModel
from .tasks import TASKS, AffectTask, get_task

__version__ = "0.1.0"


def _register_auto_classes() -> None:
    for config_class, model_class, auto_classes in (
        (FaceMAEConfig, FaceMAEForAffect, (AutoModel,)),
        (FaceMAEPreTrainingConfig, FaceMAEForPreTraining, (AutoModel, AutoModelForPreTraining)),
        (TMFConfig, TMFForAffect, (AutoModel,)),
        (VGGishConfig, VGGishModel, (AutoModel,)),
    ):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        for auto_class in auto_classes:
            auto_class.register(config_class, model_class, exist_ok=True)
        config_class.register_for_auto_class()
        model_class.register_for_auto_class("AutoModel")


_register_auto_classes()

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
