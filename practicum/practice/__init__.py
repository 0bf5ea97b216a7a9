"""Deliberate Practice: the loop that grows a synthetic training set with samples the current
learner finds hard, its baselines, and the study that compares them."""

from practicum.practice.generate import (BankGenerator, DiffusionGenerator, FallbackGenerator, Generation, Request,
                                         balanced_labels)
from practicum.practice.loop import practice
from practicum.practice.settings import GeneratorSettings, PracticeSettings

__all__ = ["BankGenerator", "DiffusionGenerator", "FallbackGenerator", "Generation", "GeneratorSettings",
           "PracticeSettings", "Request", "balanced_labels", "practice"]
