"""practicum: make the data a model practises on.

Four systems on one core: Deliberate Practice (`practicum.practice`), MGD3 distillation
(`practicum.distill`), Alchemist selection (`practicum.select`) and data scaling laws
(`practicum.scaling`). Heavy modules are imported lazily by the code that needs them.
"""

__version__ = "0.1.0"

from practicum.errors import PracticumError  # noqa: E402  (the one exception users see)

__all__ = ["PracticumError", "__version__"]
