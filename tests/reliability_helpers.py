"""In-process CLI runs for the reliability tests: exit code, output, and any traceback.

`invoke` runs `practicum.cli.main` (the real entry point, with its one-line error handling)
inside typer's CliRunner isolation, so stdout/stderr are captured without a subprocess.
"""

from __future__ import annotations

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


def invoke(*args: str) -> Outcome:
    runner = CliRunner()
    tb = None
    with runner.isolation() as (out, err, _):
        try:
            main([str(a) for a in args])
            code: int | str = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - a traceback is exactly what we look for
            code, tb = "traceback", traceback.format_exc()
        stdout, stderr = out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")
    return Outcome(code, stdout, stderr, tb)
