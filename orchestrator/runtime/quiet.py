"""Keep library chatter (progress bars, per-step log dicts) out of the sweep's progress output."""

from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if not torch.cuda.is_available():  # DeepSpeed (imported by TRL) warns while it guesses otherwise
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    # Deprecation notices of the libraries' own internals, repeated by every trial.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\..*")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    for name in ("DeepSpeed", "datasets", "accelerate", "torch.distributed"):
        logging.getLogger(name).setLevel(logging.ERROR)
