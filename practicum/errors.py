"""The exceptions a user may see. Each says what was wrong and how to fix it.

The CLI prints `error: <message>` on one line and exits 2 for any PracticumError.
"""


class PracticumError(Exception):
    """Base class: a user error with a message that says what to do."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem} ({fix})")


class ConfigError(PracticumError):
    """Settings that do not validate."""


class DataError(PracticumError):
    """Input data that is missing, malformed or unusable."""


class FitError(PracticumError):
    """A scaling law that cannot be fitted to the data it was given."""


class ModelError(PracticumError):
    """A model folder or checkpoint that is missing or malformed."""


class RunError(PracticumError):
    """A run directory that is locked, corrupt or inconsistent with the settings."""


class TrainingError(PracticumError):
    """Training that cannot go on (a loss or weights that became nan or infinite)."""
