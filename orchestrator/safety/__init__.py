"""Safety techniques applied to the backdoored model (a registry: `sft`, `sft-post-scratchpad`,
`rl`, `adversarial`, `dpo`, ...). Each takes a `SafetyContext` and returns a `SafetyResult`."""

import orchestrator.safety.adversarial as _adversarial  # noqa: F401  (registers `adversarial`)
import orchestrator.safety.dpo as _dpo  # noqa: F401  (registers `dpo`)
import orchestrator.safety.rl as _rl  # noqa: F401  (registers `rl`)
import orchestrator.safety.sft_variants as _sft_variants  # noqa: F401  (registers `sft-post-scratchpad`)
from orchestrator.safety.adversarial import REDTEAMERS, RedTeamGenerator
from orchestrator.safety.techniques import TECHNIQUES, SafetyContext, SafetyResult, SafetyTechnique
from orchestrator.train.methods import LogEntry

__all__ = ["REDTEAMERS", "TECHNIQUES", "LogEntry", "RedTeamGenerator", "SafetyContext", "SafetyResult",
           "SafetyTechnique"]
