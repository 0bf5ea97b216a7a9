"""Checks shared by every command, run before any work starts.

- `FiniteFloat`: a float setting that refuses nan and ±inf (every `Settings` refuses them too,
  through `allow_inf_nan=False`; the type documents the intent where a field is declared).
- `check_out`: what `--out` must satisfy (not a file, not under a file, not / or the home folder,
  writable).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

from pydantic import Field

from practicum.errors import ConfigError, RunError

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def check_out(path: str | Path) -> Path:
    """Refuse an `--out` that cannot become a run folder; create nothing.

    An empty string is refused (it would write the run into the current directory), and so is an
    existing file, a path under a file, and a place this process cannot write to.
    """
    if str(path).strip() == "":
        raise ConfigError("the run folder is empty", "name the run folder to write, e.g. --out runs/mine")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} is an existing file, not a folder", "choose a folder name for the run")
    if path.is_dir() and path.resolve() in (Path("/"), Path.home().resolve()):
        raise RunError(f"{path} is {'the root' if path.resolve() == Path('/') else 'your home'} folder, "
                       "not a run folder", "name a folder for the run, e.g. --out runs/mine")
    ancestor = path
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if ancestor != path and not ancestor.is_dir():
        raise RunError(f"{path} lies under {ancestor}, which is a file", "choose a folder name for the run")
    if not _writable(ancestor):
        raise RunError(f"{path}: cannot write in {ancestor} (permission denied or read-only)",
                       "choose a folder you can write to")
    return path


def _writable(folder: Path) -> bool:
    """Probe by creating a file: os.access says yes to root even on a read-only mount."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".practicum-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def data_input(spec: str | None) -> Path | None:
    """The file or folder a `--data` spec reads (None for the built-in data sets)."""
    if not spec:
        return None
    kind, _, rest = str(spec).partition(":")
    if kind in ("folder", "npz") and rest:
        return Path(rest)
    path = Path(spec)
    return path if path.exists() else None


def model_input(spec: str | None) -> Path | None:
    """The folder a `--model` spec reads (None for the built-in models)."""
    if not spec or str(spec) == "builtin" or str(spec).startswith("builtin:"):
        return None
    return Path(spec)
