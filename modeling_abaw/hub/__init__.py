"""Publishing model folders to the Hugging Face Hub.

    cards   `model_card(model_dir)` / `write_model_card(model_dir)`: the folder's README.md (YAML with model-index,
            licence and gating; the body from the template in `model_cards/`), made from the folder alone

This module stays light (`abaw --help` may import it): its submodules import huggingface_hub and transformers.
"""
