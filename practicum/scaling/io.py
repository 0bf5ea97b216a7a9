"""Reading learning curves from long-format CSV: `curve,x,y[,seed]`.

Everything is checked before any output is written (spec item 8): a missing file, a missing or
unknown column, a non-numeric cell, NaN/inf, x <= 0, values outside the metric's range and
duplicate rows each give one DataError naming the file, the row and how to fix it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from practicum.errors import DataError
from practicum.scaling.law import check_curve

REQUIRED = ("x", "y")
OPTIONAL = ("curve", "seed")


@dataclass
class Curve:
    name: str
    x: np.ndarray
    y: np.ndarray
    seeds: np.ndarray | None

    def to_dict(self) -> dict:
        return {"name": self.name, "x": self.x.tolist(), "y": self.y.tolist(),
                "seeds": None if self.seeds is None else self.seeds.tolist()}


def read_curves(path: str | Path, *, metric: str = "error") -> list[Curve]:
    """All curves of a CSV, in order of first appearance, each sorted by x."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} {'is a folder, not a CSV file' if path.is_dir() else 'does not exist'}",
                        "give the path of a CSV with columns curve,x,y[,seed]")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} cannot be read as CSV ({exc})", "save it as UTF-8 CSV") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path} is empty", "add a header curve,x,y[,seed] and one row per measurement")
    header = [h.strip().lower() for h in rows[0]]
    unknown = [h for h in header if h not in REQUIRED + OPTIONAL]
    if unknown:
        raise DataError(f"{path}: unknown column {unknown[0]!r}", "the columns are curve,x,y and optionally seed")
    missing = [h for h in REQUIRED if h not in header]
    if missing:
        raise DataError(f"{path}: missing column {missing[0]!r}", "the columns are curve,x,y and optionally seed")
    if len(set(header)) != len(header):
        raise DataError(f"{path}: a column name appears twice", "keep one of each: curve,x,y[,seed]")
    col = {h: i for i, h in enumerate(header)}
    if len(rows) < 2:
        raise DataError(f"{path} has a header but no data rows", "add one row per measurement")
    groups: dict[str, list[tuple[float, float, str | None]]] = {}
    seen: dict[tuple, int] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path} line {line_no}: {len(row)} cells for {len(header)} columns",
                            "give every row one value per column")
        values = {}
        for name in REQUIRED:
            cell = row[col[name]].strip()
            try:
                value = float(cell)
            except ValueError:
                raise DataError(f"{path} line {line_no}: {name}={cell!r} is not a number",
                                "fix or remove that row") from None
            if not math.isfinite(value):
                raise DataError(f"{path} line {line_no}: {name} is {cell}", "drop rows with NaN or infinite values")
            values[name] = value
        if values["x"] <= 0:
            raise DataError(f"{path} line {line_no}: x={values['x']:g} must be positive",
                            "x is a data size: use counts > 0")
        curve = row[col["curve"]].strip() if "curve" in col else "curve"
        if not curve:
            raise DataError(f"{path} line {line_no}: empty curve name", "name every row's curve")
        seed = row[col["seed"]].strip() if "seed" in col else None
        if seed is not None and not _is_integer(seed):
            raise DataError(f"{path} line {line_no}: seed={seed!r} is not a whole number",
                            "give each row's seed as an integer (rows with one seed are paired across sizes)")
        key = (curve, values["x"], seed)
        if key in seen:
            extra = "" if "seed" in col else "; add a seed column for repeated measurements"
            raise DataError(f"{path} lines {seen[key]} and {line_no} repeat curve={curve!r} x={values['x']:g}"
                            + (f" seed={seed}" if seed is not None else ""), "remove the duplicate" + extra)
        seen[key] = line_no
        groups.setdefault(curve, []).append((values["x"], values["y"], seed))
    curves = []
    for name, points in groups.items():
        x = np.array([p[0] for p in points])
        y = np.array([p[1] for p in points])
        seeds = np.array([p[2] for p in points]) if "seed" in col else None
        try:
            x, y, _, seeds = check_curve(x, y, metric=metric, seeds=seeds)
        except DataError as exc:
            raise DataError(f"{path}, curve {name!r}: {exc.problem}", exc.fix) from None
        curves.append(Curve(name, x, y, seeds))
    return curves


def _is_integer(cell: str) -> bool:
    try:
        return float(cell) == int(float(cell))
    except (ValueError, OverflowError):
        return False
