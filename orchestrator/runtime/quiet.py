"""Keep library chatter (progress bars, per-step log dicts) out of the sweep's progress output."""

from __future__ import annotations

import logging
import os


def quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    for name in ("DeepSpeed", "datasets", "accelerate", "torch.distributed"):
        logging.getLogger(name).setLevel(logging.ERROR)
