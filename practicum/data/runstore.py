"""The run directory: one folder per run, written atomically, locked against a second writer.

```
runs/<name>/
  config.yaml      resolved settings          run.json   versions, commit, seed, status, wall time
  metrics.jsonl    one JSON object per event  pool/ checkpoints/ figures/ report.html
```

Every file is written to a temporary name, fsynced and renamed, so a crash leaves either the
old file or the new one. `metrics.jsonl` is appended line by line; a torn last line (a crash
mid-write) is dropped when the run is reopened.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from practicum import tracking
from practicum.errors import RunError


# ---------------------------------------------------------------- atomic writes

_UMASK = os.umask(0o022)  # read the process umask once (setting it back at once)
os.umask(_UMASK)

def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write_with(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def atomic_write_with(path: str | Path, writer) -> None:
    """Atomic write for libraries that want a file name (parquet, safetensors, PNG).

    `writer(tmp_path)` must write the whole file at `tmp_path`; it is then renamed over `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def to_jsonable(obj: Any) -> Any:
    """numpy / torch scalars and arrays, paths and tuples → plain JSON values; non-finite → None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch tensor, without importing torch
        return to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------- the run directory

class RunDir:
    """A run folder. Use as a context manager to hold its lock while writing.

    >>> with RunDir.create("runs/demo", config_yaml, seed=0) as run:
    ...     run.log_metric({"event": "eval", "acc": 0.9})
    ...     run.finish()
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_handle = None
        self._started = time.time()
        self._created: Path | None = None  # the topmost folder `create` made, removed on an early failure

    # -- opening
    @classmethod
    def create(cls, path: str | Path, config_yaml: str, *, seed: int | None = None,
               command: str | None = None, resume: bool = False, overwrite: bool = False,
               inputs: dict[str, str | Path | None] | None = None) -> "RunDir":
        """Start a run at `path`, or reopen it with `resume=True`.

        `inputs` names the files and folders the run reads (a CSV, an npz, a model folder);
        their fingerprints go to inputs.json, and a resume whose inputs changed is refused, so
        results from the old input are never silently kept.

        A folder that already holds a run is refused unless `resume` (continue it; the
        settings must match) or `overwrite` (start again). A folder that holds only a failed
        start (bookkeeping, no output) is not a run: it is started again, whatever the flags.
        If the command then fails before writing any output, the folder is removed again
        (see `__exit__`), so a corrected rerun into the same `--out` just works.
        """
        from practicum.validate import check_out

        run = cls(path)
        check_out(run.path)
        existing = run.config_path.exists() and not run.only_bookkeeping()
        if existing and not (resume or overwrite):
            raise RunError(f"{run.path} already holds a run",
                           "pass --resume to continue it, --overwrite to start again, or choose another --out")
        run._created = _first_missing(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        run.acquire()
        fingerprints = {name: fingerprint(p) for name, p in (inputs or {}).items() if p is not None}
        if existing and resume:
            if run.config_path.read_text() != config_yaml:
                run.release()
                raise RunError(f"the settings differ from those {run.path} was started with",
                               "resume with the same settings (see its config.yaml) or use --overwrite")
            recorded = run.read_json("inputs.json", default=None)
            if recorded is not None:
                changed = [name for name in sorted(set(recorded) | set(fingerprints))
                           if recorded.get(name) != fingerprints.get(name)]
                if changed:
                    run.release()
                    raise RunError(f"{', '.join(changed)} changed since {run.path} was started "
                                   "(its content no longer matches inputs.json)",
                                   "restore it, or rerun with --overwrite to start from the new input")
            run._repair_metrics()
            info = run.read_json("run.json", default={})
            info.update(status="running", resumed=info.get("resumed", 0) + 1)
            run.write_json("run.json", info)
        else:
            if run.config_path.exists():  # overwrite, or a failed start: its events are not ours
                run.metrics_path.unlink(missing_ok=True)
            atomic_write_text(run.config_path, config_yaml)
            run.write_json("inputs.json", fingerprints)
            run.write_json("run.json", run_info(seed=seed, command=command, status="running"))
        return run

    BOOKKEEPING = frozenset({"config.yaml", "run.json", "inputs.json", ".lock"})

    def only_bookkeeping(self) -> bool:
        """True when the folder holds nothing a run produced: settings, run.json, the lock, no events."""
        if not self.path.is_dir():
            return True
        for entry in self.path.iterdir():
            if entry.name in self.BOOKKEEPING or entry.name.startswith((".config.", ".run.", ".inputs.")):
                continue
            if entry.name == "metrics.jsonl" and entry.stat().st_size == 0:
                continue
            if entry.is_dir() and not any(entry.iterdir()):  # an empty subfolder made on demand
                continue
            return False
        return True

    def acquire(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RunError(f"{self.path} is being written by another process",
                           "wait for it to finish or write to another --out") from None
        self._lock_handle = handle

    def release(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> "RunDir":
        if self._lock_handle is None:
            self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.only_bookkeeping():
            self.release()
            self._remove_failed_start()
            return
        if exc_type is not None and self.config_path.exists():
            status = "interrupted" if exc_type is KeyboardInterrupt else "failed"
            try:
                self._set_status(status, error=None if exc is None else str(exc)[:500])
            except OSError:  # a full disk: keep the original error, the old run.json stays whole
                pass
        self.release()

    def _remove_failed_start(self) -> None:
        """A command failed before its first output: leave no half-written run behind."""
        import shutil

        if self._created is not None:
            shutil.rmtree(self._created, ignore_errors=True)
            return
        for name in ("config.yaml", "run.json", "inputs.json", "metrics.jsonl", ".lock"):
            (self.path / name).unlink(missing_ok=True)
        for entry in self.path.iterdir() if self.path.is_dir() else ():
            if entry.is_dir() and not any(entry.iterdir()):
                entry.rmdir()

    # -- paths
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def sub(self, name: str) -> Path:
        """A subfolder (pool, checkpoints, figures, ...), created on demand."""
        folder = self.path / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- files
    def write_json(self, name: str, obj: Any) -> Path:
        target = self.path / name
        atomic_write_json(target, obj)
        return target

    def read_json(self, name: str, default: Any = None) -> Any:
        target = self.path / name
        if not target.exists():
            return default
        try:
            return json.loads(target.read_text())
        except json.JSONDecodeError as exc:
            raise RunError(f"{target} is not valid JSON ({exc.msg})", "delete it or rerun with --overwrite") from None

    def log_metric(self, record: dict[str, Any]) -> None:
        """Append one event to metrics.jsonl (flushed and fsynced, so a crash loses at most this line)."""
        row = to_jsonable({"time": round(time.time(), 3), **record})
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        tracking.emit(self.path, row)  # MLflow / TensorBoard, when a tracker is active

    def metrics(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash
            if event is None or row.get("event") == event:
                rows.append(row)
        return rows

    def trim_metrics(self, keep) -> int:
        """Keep only the metrics rows for which `keep(row)` is true (atomically); return how many went.

        A resumed command calls this to drop events logged after its last checkpoint, which the
        resumed work logs again."""
        if not self.metrics_path.exists():
            return 0
        lines = self.metrics_path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = []
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if keep(row):
                kept.append(line if line.endswith("\n") else line + "\n")
        if len(kept) != len(lines):
            atomic_write_text(self.metrics_path, "".join(kept))
        return len(lines) - len(kept)

    def _repair_metrics(self) -> None:
        if not self.metrics_path.exists():
            return
        text = self.metrics_path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            keep = text[: text.rfind("\n") + 1]
            atomic_write_text(self.metrics_path, keep)

    # -- status
    def finish(self, **extra: Any) -> None:
        self._set_status("finished", **extra)

    def _set_status(self, status: str, **extra: Any) -> None:
        info = self.read_json("run.json", default={})
        info["status"] = status
        info["wall_seconds"] = round(info.get("wall_seconds", 0.0) + time.time() - self._started, 3)
        self._started = time.time()
        info.update({k: v for k, v in extra.items() if v is not None})
        self.write_json("run.json", info)


def fingerprint(path: str | Path) -> str | None:
    """sha256 of a file's bytes, or of a folder's files (relative path + bytes), or None if absent.

    Files over 256 MB (diffusion weights) contribute their size and mtime instead of their bytes,
    so a resume never spends minutes hashing a model folder.
    """
    import hashlib

    path = Path(path)
    if not path.exists():
        return None
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        stat = file.stat()
        if stat.st_size > 256 * 2 ** 20:
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
            continue
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(2 ** 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _first_missing(path: Path) -> Path | None:
    """The topmost folder of `path` that does not exist yet (what mkdir -p will create), or None."""
    missing = None
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing = folder
    return missing


def run_info(seed: int | None = None, command: str | None = None, status: str = "running") -> dict[str, Any]:
    """Versions, git commit and the command line: what is needed to say how a run was made."""
    from practicum import __version__

    versions = {"practicum": __version__, "python": platform.python_version()}
    for name in ("torch", "diffusers", "numpy", "scipy", "sklearn"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return {
        "status": status,
        "seed": seed,
        "command": command if command is not None else " ".join(["practicum", *sys.argv[1:]]),
        "versions": versions,
        "git_commit": _git_commit(),
        "host": platform.node(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_seconds": 0.0,
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
