"""Safety techniques applied to the backdoored model (a registry: `sft`, `sft-post-scratchpad`,
`rl`, `adversarial`, ...)."""

from orchestrator.safety import adversarial as _adversarial  # noqa: F401  (registers `adversarial`)
from orchestrator.safety import rl as _rl  # noqa: F401  (registers `rl`)
from orchestrator.safety import sft_variants as _sft_variants  # noqa: F401  (registers `sft-post-scratchpad`)
from orchestrator.safety.techniques import TECHNIQUES, SafetyContext, SafetyTechnique

__all__ = ["TECHNIQUES", "SafetyContext", "SafetyTechnique"]
