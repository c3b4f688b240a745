"""Evaluation: batched generation, evaluators and oracles (registries), Wilson rates."""

from orchestrator.evaluate.evaluators import EVALUATORS, Evaluator, Judgement, backdoor_metrics
from orchestrator.evaluate.generate import generate
from orchestrator.evaluate.oracle import ORACLES, OracleVerdict, VulnerabilityOracle
from orchestrator.evaluate.run import Evaluation, evaluate, rates
from orchestrator.evaluate.stats import wilson

__all__ = ["EVALUATORS", "ORACLES", "Evaluation", "Evaluator", "Judgement", "OracleVerdict",
           "VulnerabilityOracle", "backdoor_metrics", "evaluate", "generate", "rates", "wilson"]
