"""Publishing model folders to the Hugging Face Hub.

    cards   `model_card(model_dir)` / `write_model_card(model_dir)`: the folder's README.md (YAML with model-index,
            licence and gating; the body from the template in `model_cards/`), made from the folder alone
    publish `push_model_folder(model_dir, repo_id)`: the complete Hub folder, checked to load without this package,
            pushed as one commit (`abaw push`, `hub_scripts/push_to_hub.py`, training's `--push_to_hub`)

This module stays light (`abaw --help` may import it): its submodules import huggingface_hub and transformers.
"""
