"""Progress output off a terminal: a log file or a pipe gets plain lines, never redrawn bars."""

import sys


def no_library_bars_off_terminal() -> None:
    """Turn off the progress bars of transformers and huggingface_hub (loading and downloading weights) and of
    datasets (when in use) if stderr is not a terminal: they redraw their line with carriage returns and escape
    codes, noise in a log file. The package's own bars use `disable=None`, which tqdm turns off there already."""
    if not sys.stderr.isatty():
        no_library_bars()


def no_library_bars() -> None:
    """Turn off the progress bars of transformers, huggingface_hub and datasets (when in use): also for the processes
    other than the main one of a multi-process command, which share its terminal and show no bars of their own."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    disable_progress_bars()
    datasets = sys.modules.get("datasets")  # inference never imports datasets; loading it here would cost start-up
    if datasets is not None:
        datasets.disable_progress_bars()
