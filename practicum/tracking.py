"""Experiment tracking: the events of metrics.jsonl, mirrored to MLflow or TensorBoard.

practicum's record of a run is its `metrics.jsonl`; tracking adds nothing to it. While a
tracker is active (`with tracking("mlflow"):`, `--track mlflow` on any command that writes a
run folder), every event `RunDir.log_metric` appends is also sent to the tracker, and when
the tracker closes, each run's figures, report and settings go along as artifacts.

- `mlflow`: a local file store at `<out>/mlruns` (no server), or wherever MLFLOW_TRACKING_URI
  points. One MLflow run per run folder; a run folder inside the first one (a study's
  strategies) is a nested run of it. Read it with `mlflow ui --backend-store-uri <out>/mlruns`.
- `tensorboard`: event files under `<out>/tensorboard/<run>`; `tensorboard --logdir <out>/tensorboard`.

An event becomes scalars named `<event>/<field>` (`eval/val_accuracy`, `injection/pool_size`)
at the event's own `step`, or at its position among events of its kind when it has none.
Numbers and booleans are sent; text and lists stay in metrics.jsonl only.
"""

from __future__ import annotations

import abc
import functools
import inspect
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from practicum.errors import ConfigError

TRACKERS = ("mlflow", "tensorboard")
_EXTRA = {"mlflow": "mlflow", "tensorboard": "tensorboard"}
_active: list["_Tracker"] = []


@contextmanager
def tracking(kind: str | None, root: str | Path | None = None):
    """Mirror the events of every run folder written inside the block to `kind` (None: off).

    `root` is where the store goes (default: the first run folder that logs an event)."""
    if kind is None:
        yield None
        return
    tracker = _make(kind, None if root is None else Path(root))
    _active.append(tracker)
    try:
        yield tracker
    except BaseException:
        _active.remove(tracker)
        tracker.close(failed=True)
        raise
    _active.remove(tracker)
    tracker.close()


def emit(run_path: Path, record: dict[str, Any]) -> None:
    """Called by `RunDir.log_metric` with each event as written to metrics.jsonl."""
    for tracker in _active:
        tracker.log(Path(run_path), record)


def scalars(record: dict[str, Any], seen: dict[str, int]) -> tuple[int, dict[str, float]]:
    """(step, {name: value}) of one event; `seen` counts events per kind (for events with no step)."""
    event = str(record.get("event", "event"))
    position = seen.get(event, 0)
    seen[event] = position + 1
    step = record.get("step")
    step = step if isinstance(step, int) and not isinstance(step, bool) else position
    values: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}/{key}", inner)
        elif isinstance(value, (bool, int, float)):
            values[prefix] = float(value)

    for key, value in record.items():
        if key not in ("event", "time", "step"):
            walk(f"{event}/{key}", value)
    return step, values


def track_option(command):
    """Give a typer command a `--track` option that runs its body inside `tracking(...)`."""
    signature = inspect.signature(command, eval_str=True)
    option = _typer_option()
    parameter = inspect.Parameter("track", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=str | None)

    @functools.wraps(command)
    def wrapper(*args, track: str | None = None, **kwargs):
        with tracking(track, kwargs.get("out")):
            return command(*args, **kwargs)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
    wrapper.__signature__ = signature.replace(parameters=[*params, parameter])
    wrapper.__annotations__ = {**{p.name: p.annotation for p in params}, "track": str | None}
    return wrapper


def _typer_option():
    return typer.Option(None, "--track", help="Also send the run's events to mlflow (<out>/mlruns) or "
                                              "tensorboard (<out>/tensorboard); needs practicum[mlflow] or "
                                              "practicum[tensorboard].")


def _make(kind: str, root: Path | None) -> "_Tracker":
    if kind not in TRACKERS:
        raise ConfigError(f"unknown tracker {kind!r}", f"use one of {', '.join(TRACKERS)}")
    try:
        return _MlflowTracker(root) if kind == "mlflow" else _TensorBoardTracker(root)
    except ImportError:
        raise ConfigError(f"--track {kind} needs the {kind} package",
                          f"pip install 'practicum[{_EXTRA[kind]}]'") from None


class _Tracker(abc.ABC):
    """One tracked run per run folder, opened at its first event; artifacts sent on close."""

    def __init__(self, root: Path | None):
        self.root = None if root is None else root.resolve()
        self.runs: dict[Path, Any] = {}
        self.seen: dict[Path, dict[str, int]] = {}

    def log(self, path: Path, record: dict[str, Any]) -> None:
        path = path.resolve()
        if self.root is None:
            self.root = path
        if path != self.root and path.is_relative_to(self.root) and self.root not in self.runs:
            self._start(self.root)  # the parent first (a study logs its own events after its runs')
        if path not in self.runs:
            self._start(path)
        step, values = scalars(record, self.seen[path])
        if values:
            self._write(self.runs[path], step, values, record.get("time"))

    def _start(self, path: Path) -> None:
        self.runs[path] = self._open(path)
        self.seen[path] = {}

    def name(self, path: Path) -> str:
        inside = path != self.root and path.is_relative_to(self.root)
        return str(path.relative_to(self.root)) if inside else path.name

    def close(self, failed: bool = False) -> None:
        for path, handle in self.runs.items():
            self._finish(handle, _artifacts(path), failed)

    # what each library does
    @abc.abstractmethod
    def _open(self, path: Path) -> Any:
        """Implemented by each library's tracker."""

    @abc.abstractmethod
    def _write(self, handle: Any, step: int, values: dict[str, float], time: float | None) -> None:
        """Implemented by each library's tracker."""

    @abc.abstractmethod
    def _finish(self, handle: Any, artifacts: list[tuple[Path, str]], failed: bool) -> None:
        """Implemented by each library's tracker."""


def _artifacts(path: Path) -> list[tuple[Path, str]]:
    """(file, folder in the store) for a run's figures, report and settings."""
    found = [(p, "figures") for p in sorted((path / "figures").glob("*.png"))]
    found += [(path / name, "") for name in ("config.yaml", "report.html", "summary.json", "result.json")
              if (path / name).is_file()]
    return found


class _MlflowTracker(_Tracker):
    def __init__(self, root: Path | None):
        from mlflow.tracking import MlflowClient  # noqa: F401  optional: practicum[mlflow] (fails early when missing)

        super().__init__(root)
        self.client = None
        self.experiment = None

    def _open(self, path: Path) -> str:
        from mlflow.tracking import MlflowClient  # optional: practicum[mlflow]

        if self.client is None:
            uri = os.environ.get("MLFLOW_TRACKING_URI")
            if uri is None:
                # MLflow 3 keeps the file store working behind this switch; it needs no server or database
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
                uri = (self.root / "mlruns").as_uri()
            self.client = MlflowClient(uri)
            found = self.client.get_experiment_by_name("practicum")
            self.experiment = found.experiment_id if found else self.client.create_experiment("practicum")
        parent = self.runs.get(self.root)
        tags = {"practicum.run_dir": str(path)}
        if parent is not None and path != self.root:
            tags["mlflow.parentRunId"] = parent
        return self.client.create_run(self.experiment, run_name=self.name(path), tags=tags).info.run_id

    def _write(self, run_id: str, step: int, values: dict[str, float], time: float | None) -> None:
        from mlflow.entities import Metric  # optional: practicum[mlflow]

        stamp = int(1000 * time) if isinstance(time, (int, float)) else 0
        metrics = [Metric(key, value, stamp, step) for key, value in values.items()]
        self.client.log_batch(run_id, metrics=metrics)

    def _finish(self, run_id: str, artifacts: list[tuple[Path, str]], failed: bool) -> None:
        for file, folder in artifacts:
            self.client.log_artifact(run_id, str(file), folder or None)
        self.client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")


class _TensorBoardTracker(_Tracker):
    def __init__(self, root: Path | None):
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401  optional: practicum[tensorboard]

        super().__init__(root)

    def _open(self, path: Path):
        from torch.utils.tensorboard import SummaryWriter  # optional: practicum[tensorboard]

        return SummaryWriter(log_dir=str(self.root / "tensorboard" / self.name(path)))

    def _write(self, writer, step: int, values: dict[str, float], time: float | None) -> None:
        for key, value in values.items():
            writer.add_scalar(key, value, global_step=step, walltime=time)

    def _finish(self, writer, artifacts: list[tuple[Path, str]], failed: bool) -> None:
        import numpy as np  # lazy: CLI start-up (for --track)
        from PIL import Image  # lazy: CLI start-up (for --track)

        for file, folder in artifacts:
            if folder == "figures":  # TensorBoard keeps images, not files
                image = np.asarray(Image.open(file).convert("RGB"))
                writer.add_image(f"figures/{file.stem}", image, dataformats="HWC")
        writer.close()
