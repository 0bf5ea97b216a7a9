"""The run directory: one folder per run, written atomically, locked against a second writer.

```
runs/<name>/
  config.yaml      resolved settings          run.json   versions, commit, seed, status, wall time
  metrics.jsonl    one JSON object per event  pool/ checkpoints/ figures/ report.html
  inputs.json      a fingerprint of every input  .practicum-run.json  the marker: what practicum wrote here
```

Every file is written to a temporary name, fsynced and renamed, so a crash leaves either the
old file or the new one. `metrics.jsonl` is appended line by line; a torn last line (a crash
mid-write) is dropped when the run is reopened.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from practicum import __version__, tracking
from practicum.config import RUNTIME_KEYS
from practicum.errors import RunError
from practicum.validate import check_out

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
    _record_in_open_runs(path)
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


def _record_in_open_runs(path: Path) -> None:
    """Before a write inside a run folder this process holds, list its top-level entry in the marker."""
    if not _OPEN_RUNS:
        return
    target = os.path.abspath(path)
    for run in list(_OPEN_RUNS):
        if run._pid != os.getpid():  # a forked worker: the marker is the lock holder's to write
            continue
        root = os.path.abspath(run.path)
        if target.startswith(root + os.sep):
            run._record(target[len(root) + 1:].split(os.sep, 1)[0])


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

MARKER = ".practicum-run.json"  # what makes a folder a run: a format version and every entry practicum wrote
MARKER_FORMAT = 1
REPLACED = ".practicum-replaced"  # an --overwrite's old outputs, kept until the new run has output of its own
RESULTS = "summary.json"  # every command's results file
_STARTUP = ("config.yaml", "run.json", "inputs.json", "metrics.jsonl")  # what every start writes
_OPEN_RUNS: list["RunDir"] = []  # runs this process writes, so an atomic write inside one is recorded first


class RunDir:
    """A run folder. Use as a context manager to hold its lock while writing.

    >>> with RunDir.create("runs/demo", config_yaml, seed=0) as run:
    ...     run.log_metric({"event": "eval", "acc": 0.9})
    ...     run.finish()

    A folder is a run only when it holds practicum's marker, `.practicum-run.json`: a format version
    and the top-level entries practicum wrote there, each recorded before it is written. A non-empty
    folder without the marker is someone else's and is refused; `--overwrite` removes only what the
    marker lists; an entry of a run folder that the marker does not list is never replaced.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_handle = None
        self._started = time.time()
        self._created: Path | None = None  # the topmost folder `create` made, removed on a failed start
        self._outputs: set[str] = set()  # entries practicum wrote here (the marker's list)
        self._foreign: set[str] = set()  # entries found here that practicum did not write: never touched
        self._had_marker = False  # the folder was marked before this start
        self._fresh = False  # this start wrote new settings (a new run, not a resume)
        self._replaced: list[str] = []  # old outputs moved to REPLACED by this start, put back if it fails
        self._marker_lock = threading.RLock()  # writing the marker records it too
        self._pid = os.getpid()  # the process that opened the run (and holds its lock)

    # -- opening
    @classmethod
    def create(cls, path: str | Path, config_yaml: str, *, seed: int | None = None,
               command: str | None = None, resume: bool = False, overwrite: bool = False,
               inputs: dict[str, str | Path | None] | None = None) -> "RunDir":
        """Start a run at `path`, or reopen it with `resume=True`.

        `inputs` names every file and folder the run reads (data, models, raters, scores); their
        fingerprints go to inputs.json, and a resume is refused when any of them changed, so
        results from an old input are never mixed with a new one.

        A folder that already holds a run is refused unless `resume` (continue it; the settings
        and inputs must match) or `overwrite` (start again). A run holding only a failed start
        (bookkeeping, no output) is started again, whatever the flags. If the command then
        fails before its first output, the folder is put back as it was (see `__exit__`).
        """
        if resume and overwrite:
            raise RunError("--resume and --overwrite contradict each other",
                           "pass --resume to continue the run, or --overwrite to start it again")
        run = cls(path)
        check_out(run.path)
        run._refuse_foreign_folder()
        run._created = _first_missing(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        run.acquire()  # refused: the folder is another process's, left as it is
        try:
            run._open(config_yaml, seed=seed, command=command, resume=resume, overwrite=overwrite, inputs=inputs)
        except BaseException:
            run._undo_start()
            raise
        return run

    def _refuse_foreign_folder(self) -> None:
        """Refuse a non-empty folder that practicum did not mark (a user's files), touching nothing."""
        if not self.path.is_dir() or (self.path / MARKER).exists():
            return
        entries = sorted(entry.name for entry in self.path.iterdir())
        if entries:
            shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
            raise RunError(f"{self.path} is not empty ({shown}) and is not a practicum run folder",
                           "choose a new or empty folder for --out; practicum writes only into its own")

    def _open(self, config_yaml: str, *, seed, command, resume: bool, overwrite: bool, inputs) -> None:
        self._read_marker()
        existing = self._had_marker and not self.only_bookkeeping()
        if existing and not (resume or overwrite):
            raise RunError(f"{self.path} already holds a run",
                           "pass --resume to continue it, --overwrite to start again, or choose another --out")
        fingerprints = {name: fingerprint(p) for name, p in (inputs or {}).items() if p is not None}
        if existing and resume:
            self._check_resume(config_yaml, fingerprints)
            _OPEN_RUNS.append(self)
            self._repair_metrics()
            info = self.read_json("run.json", default={})
            info.update(status="running", resumed=info.get("resumed", 0) + 1)
            self.write_json("run.json", info)
            return
        clash = sorted(self._foreign.intersection(_STARTUP))
        if clash:
            raise RunError(f"{self.path / clash[0]} was not written by practicum and would be replaced",
                           "move it out of the run folder, or choose another --out")
        self._fresh = True
        self._set_aside_old_outputs()
        _OPEN_RUNS.append(self)
        atomic_write_text(self.config_path, config_yaml)
        self.write_json("inputs.json", fingerprints)
        self.write_json("run.json", run_info(seed=seed, command=command, status="running"))

    def _check_resume(self, config_yaml: str, fingerprints: dict[str, str | None]) -> None:
        old_yaml = self.config_path.read_text(encoding="utf-8") if self.config_path.is_file() else ""
        differ = settings_diff(old_yaml, config_yaml)
        if differ:
            raise RunError(f"the settings differ from those {self.path} was started with: {differ}",
                           "resume with the run's own settings (a bare --resume reads its config.yaml), "
                           "or start again with --overwrite")
        recorded = self.read_json("inputs.json", default=None)
        if recorded is not None:
            changed = [name for name in sorted(set(recorded) | set(fingerprints))
                       if recorded.get(name) != fingerprints.get(name)]
            if changed:
                raise RunError(f"{', '.join(changed)} changed since {self.path} was started "
                               "(its content no longer matches inputs.json)",
                               "restore it, or rerun with --overwrite to start from the new input")

    # -- the marker: what practicum wrote here
    def _read_marker(self) -> None:
        marker = self.path / MARKER
        present = {entry.name for entry in self.path.iterdir()} - {MARKER}
        if not marker.exists():  # a new or empty folder: only our lock is here
            self._outputs = {".lock"}
            self._foreign = present - self._outputs
            self._write_marker()
            return
        self._had_marker = True
        try:
            content = json.loads(marker.read_text(encoding="utf-8"))
            listed = content["outputs"]
            if content.get("format") != MARKER_FORMAT or not all(isinstance(name, str) for name in listed):
                raise ValueError
        except (OSError, ValueError, KeyError, TypeError):
            raise RunError(f"{marker} is damaged or from another practicum version",
                           "choose another --out; practicum will not guess which files here are its own") from None
        self._outputs = {name for name in listed if name not in ("", ".", "..", MARKER) and "/" not in name}
        self._outputs.add(".lock")
        self._foreign = present - self._outputs
        if REPLACED in present:  # left by an --overwrite that was killed: the user asked for it to go
            shutil.rmtree(self.path / REPLACED, ignore_errors=True)

    def _write_marker(self) -> None:
        atomic_write_json(self.path / MARKER, {"format": MARKER_FORMAT, "made_by": "practicum",
                                               "outputs": sorted(self._outputs)})

    def _record(self, name: str) -> None:
        """Add a top-level entry to the marker before it is written; refuse to replace a user's entry."""
        with self._marker_lock:
            if name == MARKER or name in self._outputs:
                return
            if name in self._foreign:
                raise RunError(f"{self.path / name} was not written by practicum and would be replaced",
                               "move it out of the run folder, or choose another --out")
            self._outputs.add(name)
            self._write_marker()
        if not name.startswith(".") and name not in self.BOOKKEEPING:
            self._drop_replaced()

    def _sync(self) -> None:
        """Record the entries made since the last record by plain writes (a mkdir, a savefig)."""
        if not self.path.is_dir():
            return
        new = {entry.name for entry in self.path.iterdir()} - self._outputs - self._foreign - {MARKER}
        for name in sorted(new):
            self._record(name)

    def _set_aside_old_outputs(self) -> None:
        """Starting again: move the earlier run's outputs aside (put back if this start fails)."""
        old = sorted(name for name in self._outputs - {".lock", REPLACED}
                     if os.path.lexists(self.path / name))
        if not old:
            return
        self._record(REPLACED)
        aside = self.path / REPLACED
        aside.mkdir(exist_ok=True)
        for name in old:
            os.replace(self.path / name, aside / name)
            self._replaced.append(name)

    def _drop_replaced(self) -> None:
        """The new run has output of its own: the earlier run's outputs go for good."""
        if self._replaced:
            self._replaced = []
            shutil.rmtree(self.path / REPLACED, ignore_errors=True)

    def _undo_start(self) -> None:
        """A start failed: remove what it wrote and put back what was there."""
        if self in _OPEN_RUNS:
            _OPEN_RUNS.remove(self)
        if self._created is not None:
            self.release()
            shutil.rmtree(self._created, ignore_errors=True)
            return
        if self._fresh:
            self._sync()
            for name in sorted(self._outputs - {".lock", REPLACED}):
                target = self.path / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
            for name in self._replaced:
                os.replace(self.path / REPLACED / name, self.path / name)
            shutil.rmtree(self.path / REPLACED, ignore_errors=True)
            self._outputs = {".lock", *self._replaced}
            self._replaced = []
        if self._had_marker:
            if self._fresh:
                self._write_marker()
            self.release()
        else:  # the folder was empty before: leave it empty
            (self.path / MARKER).unlink(missing_ok=True)
            self.release()
            (self.path / ".lock").unlink(missing_ok=True)

    BOOKKEEPING = frozenset({"config.yaml", "run.json", "inputs.json", ".lock", MARKER, REPLACED})

    def only_bookkeeping(self) -> bool:
        """True when practicum wrote nothing here but settings, run.json and the lock: no events, no output."""
        if not self.path.is_dir():
            return True
        for name in self._outputs:
            entry = self.path / name
            if name in self.BOOKKEEPING or name.startswith(".") or not os.path.lexists(entry):
                continue  # hidden names are the lock and temporary files of atomic writes
            if name == "metrics.jsonl" and entry.stat().st_size == 0:
                continue
            if entry.is_dir() and not entry.is_symlink() and not any(entry.iterdir()):  # made on demand
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
        if self in _OPEN_RUNS:
            _OPEN_RUNS.remove(self)
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> "RunDir":
        if self._lock_handle is None:
            self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._fresh and self.only_bookkeeping():
            self._undo_start()  # a failed start: nothing of it stays
            return
        if exc_type is not None and self.config_path.exists():
            status = "interrupted" if exc_type is KeyboardInterrupt else "failed"
            try:
                self._set_status(status, error=None if exc is None else str(exc)[:500])
            except OSError:  # a full disk: keep the original error, the old run.json stays whole
                pass
        try:
            self._sync()
            self._drop_replaced()
        except (OSError, RunError):  # a full disk, or a user's file appeared: the marker lists what it can
            pass
        self.release()

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
        self._record(Path(name).parts[0])
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- checkpoints: checkpoints/<name>/, and checkpoints/latest.json naming the one to resume from
    def save_checkpoint(self, name: str, write: Callable[[Path], None]) -> Path:
        """`write(folder)` fills checkpoints/<name>/ (each file atomically); then latest.json names it and
        the checkpoint named before goes, so a kill at any moment leaves one whole checkpoint. Saving a
        name again (a replay after a kill, a final save on the last periodic one) replaces its files."""
        previous = self.latest_checkpoint()
        folder = self.sub(f"checkpoints/{name}")
        write(folder)
        atomic_write_json(folder.parent / "latest.json", {"checkpoint": name})
        if previous is not None and previous != folder:
            shutil.rmtree(previous, ignore_errors=True)
        return folder

    def latest_checkpoint(self) -> Path | None:
        """The folder of the last checkpoint saved (None before the first)."""
        pointer = self.read_json("checkpoints/latest.json")
        return None if pointer is None else self.path / "checkpoints" / pointer["checkpoint"]

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

    def write_results(self, results: Any) -> Path:
        """The command's results, `summary.json`: written last, so with its outputs it marks the run done."""
        return self.write_json(RESULTS, results)

    def read_results(self) -> Any:
        """What `write_results` wrote, or None (practice runs made before issue 25 named it result.json)."""
        found = self.read_json(RESULTS)
        return found if found is not None else self.read_json("result.json")

    def log_metric(self, record: dict[str, Any]) -> None:
        """Append one event to metrics.jsonl (flushed and fsynced, so a crash loses at most this line)."""
        row = to_jsonable({"time": round(time.time(), 3), **record})
        if self.metrics_path.name not in self._outputs and self.metrics_path.exists():
            raise RunError(f"{self.metrics_path} was not written by practicum; it will not be appended to",
                           "move it out of the run folder, or choose another --out")
        self._record(self.metrics_path.name)
        self._sync()
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

    def trim_metrics(self, keep: Callable[[dict[str, Any]], bool] | int) -> int:
        """Drop the events a resumed command logs again, atomically; return how many went.

        `keep` is the number of rows to keep (the count a checkpoint recorded, `len(run.metrics())`),
        or a test of each row (rows logged after the step being resumed fail it)."""
        if not self.metrics_path.exists():
            return 0
        lines = self.metrics_path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = []
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if len(kept) < keep if isinstance(keep, int) else keep(row):
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


def settings_diff(old_yaml: str, new_yaml: str, shown: int = 3) -> str:
    """'seed (0 → 1), train.steps (400 → 600)': the settings that differ between two config.yaml texts,
    or '' when they hold the same values but for run-time choices (`config.RUNTIME_KEYS`)."""
    def flat(text: str) -> dict[str, Any]:
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError:
            values = None
        out: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict) and value:
                for key, item in value.items():
                    walk(f"{prefix}.{key}" if prefix else str(key), item)
            else:
                out[prefix or "(the whole file)"] = value

        walk("", values if isinstance(values, dict) else {"(the whole file)": values})
        return out

    old, new = flat(old_yaml), flat(new_yaml)
    differ = [key for key in [*old, *(k for k in new if k not in old)]
              if old.get(key) != new.get(key) and key.rsplit(".", 1)[-1] not in RUNTIME_KEYS]

    def show(values: dict[str, Any], key: str) -> str:
        return repr(values[key]) if key in values else "unset"

    parts = [f"{key} ({show(old, key)} → {show(new, key)})" for key in differ[:shown]]
    if not parts:
        return ""
    return ", ".join(parts) + (f" and {len(differ) - shown} more" if len(differ) > shown else "")


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
