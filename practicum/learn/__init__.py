"""Learners: small built-in networks (or any nn.Module), AdamW with warmup-stable-decay, EMA,
evaluation on real data, patience, and safetensors + JSON state."""

from practicum.learn.learner import Learner, TrainSettings, train_classifier
from practicum.learn.models import ARCHS, build_model, register_arch
from practicum.learn.patience import Patience
from practicum.learn.schedule import cooldown_start, wsd_factor

__all__ = ["ARCHS", "Learner", "Patience", "TrainSettings", "build_model", "cooldown_start", "register_arch",
           "train_classifier", "wsd_factor"]
