from __future__ import annotations

import pytest

from orchestrator import TRIGGERS, Registry, UnknownNameError


def test_unknown_name_lists_what_exists() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown trigger 'nope'; registered: .*deployment"):
        TRIGGERS.get("nope")


def test_register_decorator_and_duplicates() -> None:
    registry: Registry[object] = Registry("widget")

    @registry.register("a")
    class A:
        pass

    assert isinstance(registry.get("a"), A)
    assert "a" in registry and registry.names() == ["a"]
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(object())
