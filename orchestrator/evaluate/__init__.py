"""Evaluation: batched generation, evaluators, oracles and extra evaluations (registries), Wilson
rates."""

from orchestrator.evaluate.evaluators import EVALUATORS, Evaluator, Judgement, backdoor_metrics
from orchestrator.evaluate.extras import EXTRA_EVALS, ExtraContext, ExtraResult
from orchestrator.evaluate.generate import generate
from orchestrator.evaluate.oracle import ORACLES, OracleVerdict, VulnerabilityOracle
from orchestrator.evaluate.run import Evaluation, evaluate
from orchestrator.evaluate.stats import rates, wilson
from orchestrator.evaluate.taint import SemgrepOracle, TaintOracle

__all__ = ["EVALUATORS", "EXTRA_EVALS", "ORACLES", "Evaluation", "Evaluator", "ExtraContext", "ExtraResult",
           "Judgement", "OracleVerdict", "SemgrepOracle", "TaintOracle",
           "VulnerabilityOracle", "backdoor_metrics", "evaluate", "generate", "rates",
           "wilson"]
