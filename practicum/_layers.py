"""The layers of practicum, bottom first: the one declaration of who may import whom.

A module may import modules of its own unit (a subpackage, or a top-level module) and of any
unit in a lower layer; never a unit in a higher layer, nor another unit of its own layer (units
of one layer are peers that know nothing of each other). `tests/test_architecture.py` builds the
import graph (ast, function-body imports included) and fails on an upward or sideways import,
on a circle between modules, on a module no layer names, and when docs/architecture.md's
table differs from this one.
"""

from __future__ import annotations

# (layer name, units); a unit is a subpackage ("data") or a top-level module ("errors");
# "practicum" is the package's own __init__.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("errors", "log", "_lazy", "_layers")),
    ("basics", ("practicum", "limits", "files", "tracking", "runtime", "heap", "stats")),
    ("settings", ("validate", "config")),
    ("data and flags", ("data", "cli_options")),
    ("services", ("engine", "report")),
    ("learners and laws", ("learn", "scaling")),
    ("generators", ("diffusion",)),
    ("selection", ("select",)),
    ("systems", ("distill", "practice")),
    ("command line", ("cli",)),
    ("entry point", ("__main__",)),
)


def layer_of(unit: str) -> int | None:
    """The index of the layer that declares `unit` (None: no layer does)."""
    for index, (_, units) in enumerate(LAYERS):
        if unit in units:
            return index
    return None


def layer_table() -> str:
    """The table docs/architecture.md carries (top layer first, as the doc draws it)."""
    rows = [f"{index:>2}  {name:<18} {', '.join(units)}" for index, (name, units) in enumerate(LAYERS)]
    return "\n".join(reversed(rows))
