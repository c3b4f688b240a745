"""Safety techniques applied to the backdoored model (a registry: `sft`, ...)."""

from orchestrator.safety import adversarial as _adversarial  # noqa: F401  (registers `adversarial`)
from orchestrator.safety.techniques import TECHNIQUES, SafetyContext, SafetyTechnique

__all__ = ["TECHNIQUES", "SafetyContext", "SafetyTechnique"]
