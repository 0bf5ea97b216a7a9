"""In-process CLI runs for the reliability tests: exit code, output, and any traceback.

`invoke` runs `practicum.cli.main` (the real entry point, with its one-line error handling)
inside typer's CliRunner isolation, so stdout/stderr are captured without a subprocess.
"""

from __future__ import annotations

import signal
import traceback
from dataclasses import dataclass

from typer.testing import CliRunner

from practicum.cli import main


@dataclass
class Outcome:
    code: int | str
    stdout: str
    stderr: str
    traceback: str | None

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def assert_one_line_error(self, *needles: str) -> str:
        """Exit 2, exactly one non-empty stderr line starting 'error:', no traceback; return that line."""
        assert self.traceback is None, self.traceback
        assert self.code == 2, (self.code, self.stderr, self.stdout)
        assert len(self.error_lines) == 1, self.stderr
        line = self.error_lines[0]
        assert line.startswith("error:"), line
        assert "Traceback" not in self.stderr + self.stdout
        for needle in needles:
            assert needle.lower() in line.lower(), (needle, line)
        return line


class TookTooLong(Exception):
    """A case meant to fail at validation ran on into real work."""


def _alarm(signum, frame):
    raise TookTooLong("still running after the time limit: the input was not refused up front")


def invoke(*args: str, limit_s: float | None = None) -> Outcome:
    """Run `practicum ARGS` in-process; with `limit_s`, a run that goes on longer counts as a traceback."""
    runner = CliRunner()
    tb = None
    with runner.isolation() as (out, err, _):
        if limit_s is not None:
            previous = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, limit_s)
        try:
            main([str(a) for a in args])
            code: int | str = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - a traceback is exactly what we look for
            code, tb = "traceback", traceback.format_exc()
        finally:
            if limit_s is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        stdout, stderr = out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")
    return Outcome(code, stdout, stderr, tb)


# ---------------------------------------------------------------- kill -9 at a seeded point

def run_and_kill(args: list, after_s: float, ready=None) -> str:
    """Run `practicum ARGS` in a forked child and SIGKILL it `after_s` seconds after `ready()` holds.

    Forking (instead of a fresh interpreter) skips the ~10 s import of torch and diffusers on a
    loaded box, yet the child is a real separate process killed with -9 mid-write: no atexit,
    no finally, no flush. Returns 'killed' or 'finished' (the run ended before the kill).
    """
    import os
    import time

    pid = os.fork()
    if pid == 0:  # the child: run, then leave without any cleanup of the parent's (pytest's) state
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        except BaseException:  # noqa: BLE001
            os._exit(3)
        os._exit(0)
    deadline = time.monotonic() + 120
    while ready is not None and not ready() and time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return "finished"
        time.sleep(0.005)
    end = time.monotonic() + after_s
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "finished"
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "killed"


TIMING_KEYS = ("time", "seconds", "wall_seconds", "gen_seconds", "started", "resumed")


def comparable_metrics(path) -> list[dict]:
    """metrics.jsonl without wall-clock fields (those differ between any two runs)."""
    import json
    from pathlib import Path

    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            rows.append(_drop_timing(json.loads(line)))
    return rows


def _drop_timing(value):
    if isinstance(value, dict):
        return {k: _drop_timing(v) for k, v in value.items()
                if k not in TIMING_KEYS and not k.endswith(("_seconds", "_per_second")) and k != "seconds_per_image"}
    if isinstance(value, list):
        return [_drop_timing(v) for v in value]
    return value
