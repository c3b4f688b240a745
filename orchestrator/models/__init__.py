"""Models: the sources of base models (a registry) and the backdoor model card."""

from orchestrator.models.card import write_model_card
from orchestrator.models.sources import MODEL_SOURCES, ModelSource, train_tokenizer

__all__ = ["MODEL_SOURCES", "ModelSource", "train_tokenizer", "write_model_card"]
