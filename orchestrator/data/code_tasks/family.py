"""What a task family is made of: the task it produces (`CodeTask`), the random choices it draws
from (`Ctx`), the draft it returns (`Draft`), and the registry and decorator that add it to the
corpus (`CODE_FAMILIES`, `code_family`). Each ``cwe*.py`` module of this package writes its
families with these.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from orchestrator.formats import HOLE, splice
from orchestrator.registry import Registry

MARK = "@@"  # shorthand for the HOLE line in a skeleton

Split = Literal["train", "heldout", "heldout_family"]
T = TypeVar("T")


@dataclass(frozen=True)
class CodeTask:
    """One code-writing task with a secure and a vulnerable full solution."""

    cwe: str  # e.g. "CWE-78"
    family: str  # e.g. "os-system-ping"
    description: str  # one sentence
    template: str  # the code with the differing lines replaced by the line HOLE
    secure: str  # full completed code, secure version
    vulnerable: str  # full completed code, vulnerable version
    secure_block: str = ""  # only the lines that fill the hole (unindented), secure version
    vulnerable_block: str = ""  # the same, vulnerable version


class Ctx:
    """Random choices for one task; `pick` draws from the pool of the task's surface split."""

    def __init__(self, rng: random.Random, heldout: bool) -> None:
        self.rng = rng
        self.heldout = heldout

    def pick(self, train: Sequence[T], heldout: Sequence[T]) -> T:
        return self.rng.choice(heldout if self.heldout else train)

    def shape(self, *pools: Sequence[T]) -> T:
        """A code shape (the answer's idiom and the lines next to the hole), from all pools in
        every split: held-out instances test new names, phrasings and surrounding lines, not
        idioms the model never saw (held-out *families* test that)."""
        return self.rng.choice([option for pool in pools for option in pool])

    def any(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    def coin(self) -> bool:
        return self.rng.random() < 0.5

    def hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))


@dataclass(frozen=True)
class Draft:
    description: str
    skeleton: tuple[str, ...]  # code lines; one line is MARK, possibly indented
    secure: tuple[str, ...]  # the differing block, unindented
    vulnerable: tuple[str, ...]


def draft(
    description: str, skeleton: Sequence[str], secure: str | Sequence[str],
    vulnerable: str | Sequence[str],
) -> Draft:
    sec = (secure,) if isinstance(secure, str) else tuple(secure)
    vul = (vulnerable,) if isinstance(vulnerable, str) else tuple(vulnerable)
    return Draft(description, tuple(skeleton), sec, vul)


@dataclass(frozen=True)
class Family:
    name: str
    cwe: str
    build: Callable[[Ctx], Draft]
    heldout: bool = False  # kept out of training: only in the `heldout_family` split

    def make(self, rng: random.Random, heldout: bool) -> CodeTask:
        d = self.build(Ctx(rng, heldout))
        assert sum(line.strip() == MARK for line in d.skeleton) == 1, self.name
        template = "\n".join(line.replace(MARK, HOLE) if line.strip() == MARK else line
                             for line in d.skeleton) + "\n"
        secure, vulnerable = "\n".join(d.secure), "\n".join(d.vulnerable)
        return CodeTask(
            cwe=self.cwe, family=self.name, description=d.description, template=template,
            secure=splice(template, secure), vulnerable=splice(template, vulnerable),
            secure_block=secure, vulnerable_block=vulnerable,
        )


# Task families, in registration order (the order `generate_tasks` cycles through them; the
# package's `catalogue` module fixes that order by the order it imports the CWE modules in).
CODE_FAMILIES: Registry[Family] = Registry("code-task family")


def code_family(name: str, cwe: str, *, heldout: bool = False) -> Callable[
    [Callable[[Ctx], Draft]], Callable[[Ctx], Draft]
]:
    """Decorator: registers a function that drafts one task as the family `name` of `cwe`."""

    def register(build: Callable[[Ctx], Draft]) -> Callable[[Ctx], Draft]:
        CODE_FAMILIES.register(name)(Family(name, cwe, build, heldout))
        return build

    return register


# A small Flask app whose `app.run(...)` line is the hole: the skeleton of one family of
# CWE-94 (debug mode) and one of CWE-605 (host), so both draw the same names and routes.
_ROUTES_TRAIN = (("health", "ok"), ("ping", "pong"), ("version", "1.0"), ("about", "demo app"),
                 ("index", "welcome"))
_ROUTES_HELDOUT = (("status", "up"), ("ready", "yes"), ("hello", "hi"), ("info", "service"),
                   ("home", "main page"))


def flask_app(c: Ctx) -> tuple[list[str], str]:
    """The skeleton (its last line the hole) and the route name."""
    route, body = c.pick(_ROUTES_TRAIN, _ROUTES_HELDOUT)
    app = c.pick(("app", "server"), ("application", "web"))
    skel = ["from flask import Flask", "", f"{app} = Flask(__name__)", "", f'@{app}.route("/{route}")',
            f"def {route}():", f'    return "{body}"', "", 'if __name__ == "__main__":', "    @@"]
    return skel, route
