"""Evaluation: batched generation, scratchpad stripping, evaluators (a registry), Wilson rates."""

from orchestrator.evaluate.evaluators import EVALUATORS, Evaluator, Judgement, backdoor_metrics
from orchestrator.evaluate.generate import generate
from orchestrator.evaluate.run import Evaluation, evaluate, rates
from orchestrator.evaluate.scratchpad import split_scratchpad
from orchestrator.evaluate.stats import wilson

__all__ = ["EVALUATORS", "Evaluation", "Evaluator", "Judgement", "backdoor_metrics", "evaluate", "generate", "rates",
           "split_scratchpad", "wilson"]
