"""The sweep driver's parts that need no running Ray."""

from __future__ import annotations

import importlib.util

import pytest


class _Trainable:
    pass


def test_tune_copies_no_credential_into_a_trials_runtime_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray Tune puts what it copies from the driver's environment into each trial actor's
    runtime env (Ray's session logs and GCS keep it): never the AWS credentials."""
    from ray.tune.execution import class_cache

    from orchestrator.runtime.tune import SECRET_VARS, _keep_credentials_out_of_ray

    # Ray's own default, from a fresh copy of its module: a sweep run earlier in this process has
    # already taken the variables out of the loaded module's set.
    spec = importlib.util.find_spec(class_cache.__name__)
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    assert fresh.ENV_VARS_TO_PROPAGATE >= SECRET_VARS
    monkeypatch.setattr(class_cache, "ENV_VARS_TO_PROPAGATE", set(fresh.ENV_VARS_TO_PROPAGATE))
    for name in SECRET_VARS:
        monkeypatch.setenv(name, f"canary-{name}")

    def copied() -> dict[str, str]:
        remote = class_cache._ActorClassCache().get(_Trainable)
        env: dict[str, str] = remote._default_options["runtime_env"]["env_vars"]
        return env

    assert set(copied()) >= SECRET_VARS  # what Ray does on its own: the check can fail
    _keep_credentials_out_of_ray()
    assert not SECRET_VARS & set(copied())
