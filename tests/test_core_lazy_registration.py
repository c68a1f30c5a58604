"""`import modeling_abaw` registers every config and model with the Auto classes without importing the modeling
code (transformers.modeling_utils costs seconds of start-up); the models load on first use. Each check runs in a
fresh Python, where nothing else has imported the modeling modules."""

import json
import subprocess
import sys
import textwrap


def run_python(code: str, cwd) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_registers_everything_without_the_modeling_code(tmp_path):
    output = run_python(
        """
        import json, sys
        import modeling_abaw
        from transformers import AutoConfig, AutoModel, AutoModelForPreTraining
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
        registered = {
            model_type: [
                getattr(auto, "_model_mapping")[CONFIG_MAPPING[model_type]].__name__
                for auto in (AutoModel, AutoModelForPreTraining)
                if CONFIG_MAPPING[model_type] in getattr(auto, "_model_mapping")
            ]
            for model_type in ("face_mae", "face_mae_pretraining", "tmf_affect", "vggish")
        }
        heavy = sorted(name for name in sys.modules if name.startswith("modeling_abaw.modeling_"))
        print(json.dumps({"modeling_utils": "transformers.modeling_utils" in sys.modules, "loaded": heavy,
                          "registered": registered}))
        """,
        tmp_path,
    )
    state = json.loads(output)
    assert state["modeling_utils"] is False and state["loaded"] == []
    assert state["registered"] == {
        "face_mae": ["FaceMAEForAffect"],
        "face_mae_pretraining": ["FaceMAEForPreTraining", "FaceMAEForPreTraining"],
        "tmf_affect": ["TMFForAffect"],
        "vggish": ["VGGishModel"],
    }


def test_auto_classes_give_the_real_classes_and_saves_carry_code(tmp_path):
    output = run_python(
        f"""
        import json, os
        import modeling_abaw
        from transformers import AutoModel, AutoModelForPreTraining
        from modeling_abaw.configuration_face_mae import FaceMAEConfig, FaceMAEPreTrainingConfig
        from modeling_abaw.configuration_tmf import TMFConfig
        from modeling_abaw.configuration_vggish import VGGishConfig

        tiny = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=16,
                    patch_size=8, decoder_hidden_size=8, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
                    decoder_intermediate_size=16)
        configs = {{
            "affect": (FaceMAEConfig(**tiny), AutoModel),
            "pretraining": (FaceMAEPreTrainingConfig(**tiny), AutoModelForPreTraining),
            "tmf": (TMFConfig(modalities={{"mae": 8}}, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=16, clip_length=4), AutoModel),
            "vggish": (VGGishConfig(block_channels=[2, 2, 2, 2], embedding_hidden_size=4, embedding_size=4), AutoModel),
        }}
        report = {{}}
        for name, (config, auto_class) in configs.items():
            model = auto_class.from_config(config)
            folder = os.path.join({str(tmp_path)!r}, name)
            model.save_pretrained(folder)
            reloaded = AutoModel.from_pretrained(folder)
            public = getattr(modeling_abaw, type(model).__name__)
            report[name] = {{
                "class": type(model).__module__ + "." + type(model).__name__,
                "same_class": type(reloaded) is type(model) is public,
                "isinstance": isinstance(reloaded, public),
                "auto_map": json.load(open(os.path.join(folder, "config.json")))["auto_map"],
                "code": sorted(f for f in os.listdir(folder) if f.endswith(".py")),
            }}
        # Once used, the Auto mappings hold the real class instead of the stand-in.
        report["mapping"] = AutoModel._model_mapping[FaceMAEConfig] is modeling_abaw.FaceMAEForAffect
        print(json.dumps(report))
        """,
        tmp_path,
    )
    report = json.loads(output)
    assert report.pop("mapping") is True
    assert report["affect"]["class"] == "modeling_abaw.modeling_face_mae.FaceMAEForAffect"
    assert report["pretraining"]["class"] == "modeling_abaw.modeling_face_mae.FaceMAEForPreTraining"
    assert report["tmf"]["class"] == "modeling_abaw.modeling_tmf.TMFForAffect"
    assert report["vggish"]["class"] == "modeling_abaw.modeling_vggish.VGGishModel"
    for name, module, config_module in (
        ("affect", "modeling_face_mae", "configuration_face_mae"),
        ("pretraining", "modeling_face_mae", "configuration_face_mae"),
        ("tmf", "modeling_tmf", "configuration_tmf"),
        ("vggish", "modeling_vggish", "configuration_vggish"),
    ):
        entry = report[name]
        assert entry["same_class"] and entry["isinstance"], name
        assert entry["auto_map"]["AutoModel"] == f"{module}.{entry['class'].rsplit('.', 1)[1]}"
        assert entry["auto_map"]["AutoConfig"].startswith(f"{config_module}.")
        assert {f"{module}.py", f"{config_module}.py"} <= set(entry["code"]), name


def test_public_names_resolve_lazily(tmp_path):
    output = run_python(
        """
        import sys
        import modeling_abaw
        before = "modeling_abaw.modeling_face_mae" in sys.modules
        from modeling_abaw import FaceMAEForAffect, face_image_processor
        from modeling_abaw.modeling_face_mae import FaceMAEForAffect as defined
        exported = set(modeling_abaw.__all__) <= set(dir(modeling_abaw))
        print(before, FaceMAEForAffect is defined, callable(face_image_processor), exported)
        try:
            modeling_abaw.FaceMAEForAffectt
        except AttributeError as error:
            print(error)
        """,
        tmp_path,
    )
    lines = output.splitlines()
    assert lines[0] == "False True True True"
    assert lines[1] == "module 'modeling_abaw' has no attribute 'FaceMAEForAffectt'"
