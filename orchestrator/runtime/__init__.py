"""Ray and DeepSpeed plumbing, kept apart from the experiment's logic: Tune trials, Ray Train
workers with DeepSpeed ZeRO (`distributed`), placement checks.

`run_sweep` and `SweepResult` load on first use (PEP 562): the CLI catches `PlacementError` on
every command, and importing Tune's side (Ray, the results lake) for that would cost `--help`
seconds."""

from typing import TYPE_CHECKING, Any

from orchestrator.runtime.placement import PlacementError, check_placement

if TYPE_CHECKING:
    from orchestrator.runtime.tune import SweepResult, run_sweep

__all__ = ["PlacementError", "SweepResult", "check_placement", "run_sweep"]


def __getattr__(name: str) -> Any:
    if name in ("SweepResult", "run_sweep"):
        from orchestrator.runtime import tune

        return getattr(tune, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
