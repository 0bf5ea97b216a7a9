"""Figures (matplotlib, Agg backend) and the self-contained HTML report of a run."""

from practicum.report.figures import new_figure, save_figure
from practicum.report.html import Section, write_report

__all__ = ["Section", "new_figure", "save_figure", "write_report"]
