"""What a known family of models samples with, and how data classes become its conditions.

Sampling defaults (used when a setting is left unset):
- Stable Diffusion (UNet2DConditionModel + VAE): 50 DDIM steps, η = 0, CFG s = 4 (DP spec §4:
  λ = 3 in the paper's convention ε = (1+λ) ε_c − λ ε_u, which is diffusers' s = 1 + λ);
- DiT (learned σ): 50 respaced DDPM steps, CFG 4.0 on the first three latent channels (MGD³ §5–6);
- the built-in digits model carries its own tuned values; anything else: 50 DDIM steps, no CFG.

Class names and prompts (SD). ImageNet-style folders are named by WordNet ids ("n01440764");
a prompt must be words ("tench"). `read_class_map` reads a mapping the user already has (no
list is shipped): ImageNet's `LOC_synset_mapping.txt` ("n01440764 tench, Tinca tinca" per line,
in ImageNet-1k index order), a CSV "wnid,name[,index]" or a JSON {wnid: name} / {wnid: {"name":
..., "index": ...}}. Names are the first comma-separated synonym. A prompt template such as
"a photo of a {name}" wraps each name; the paper's default is the bare class name ("{name}").

DiT class ids. Data label i is the i-th class folder; DiT-XL/2's label j is ImageNet-1k class j.
`model_class_ids` maps each data class to the model's id through the class map's index and
refuses (ConfigError) a data class it cannot place, or a model whose class count differs from
the data's when no map is given: a silent mislabelling is never allowed.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from practicum.diffusion.denoisers import DiTDenoiser, PixelUNetDenoiser, StableDiffusionDenoiser
from practicum.errors import ConfigError, ModelError

WNID = re.compile(r"^n\d{8}$")

SD_DEFAULTS: dict[str, Any] = {"steps": 50, "scheduler": "ddim", "eta": 0.0, "cfg_scale": 4.0}
DIT_DEFAULTS: dict[str, Any] = {"steps": 50, "scheduler": "ddpm", "eta": 0.0, "cfg_scale": 4.0}
GENERIC_DEFAULTS: dict[str, Any] = {"steps": 50, "scheduler": "ddim", "eta": 0.0, "cfg_scale": 1.0}


def model_family(den) -> str:
    """'sd', 'dit', 'pixel' or 'other' from the adapter type (no weights are inspected)."""
    if isinstance(den, StableDiffusionDenoiser):
        return "sd"
    if isinstance(den, DiTDenoiser):
        return "dit"
    if isinstance(den, PixelUNetDenoiser):
        return "pixel"
    return "other"


def default_sampling(den) -> dict[str, Any]:
    """The model's own recommendation if it carries one, else its family's (see module doc)."""
    own = getattr(den, "sampling_defaults", None)
    if own is not None:
        return dict(own)
    family = model_family(den)
    if family == "sd":
        values = dict(SD_DEFAULTS)
    elif family == "dit":
        values = dict(DIT_DEFAULTS)
    else:
        values = dict(GENERIC_DEFAULTS)
    if not getattr(den, "supports_cfg", True):
        values["cfg_scale"] = 1.0
    return values


# ---------------------------------------------------------------- class maps

@dataclass(frozen=True)
class ClassEntry:
    key: str  # the data's class folder name (a WordNet id for ImageNet)
    name: str  # words for a prompt
    index: int | None  # the class id in the model's label space (ImageNet-1k order), if known


def read_class_map(path: str | Path) -> dict[str, ClassEntry]:
    """Read a user-provided class map (formats in the module docstring), keyed by folder name."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"class map {path} does not exist",
                          "give ImageNet's LOC_synset_mapping.txt, a CSV wnid,name[,index] or a JSON file")
    text = path.read_text(encoding="utf-8")
    entries: dict[str, ClassEntry] = {}
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("the JSON must be an object {folder: name} or {folder: {name, index}}")
            for position, (key, value) in enumerate(data.items()):
                if isinstance(value, dict):
                    entries[key] = ClassEntry(key, _first_name(value["name"]),
                                              None if value.get("index") is None else int(value["index"]))
                else:
                    entries[key] = ClassEntry(key, _first_name(str(value)), None)
        elif path.suffix.lower() == ".csv":
            for row in csv.reader(text.splitlines()):
                if not row or row[0].strip().lower() in ("wnid", "folder", "key"):
                    continue
                index = int(row[2]) if len(row) > 2 and row[2].strip() else None
                entries[row[0].strip()] = ClassEntry(row[0].strip(), _first_name(row[1]), index)
        else:  # LOC_synset_mapping.txt: "wnid name, synonym, ..." in ImageNet-1k index order
            for index, line in enumerate(line for line in text.splitlines() if line.strip()):
                key, _, names = line.strip().partition(" ")
                if not names:
                    raise ValueError(f"line {index + 1} has no name after {key!r}")
                entries[key] = ClassEntry(key, _first_name(names), index)
    except (ValueError, KeyError, IndexError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the class map {path}: {exc}",
                          "one 'wnid name, synonyms' per line, a CSV wnid,name[,index] or a JSON object") from None
    if not entries:
        raise ConfigError(f"the class map {path} is empty", "give one class per line")
    return entries


def _first_name(names: str) -> str:
    return names.split(",")[0].strip()


def prompt_names(class_names: Sequence[str], class_map: dict[str, ClassEntry] | None = None,
                 template: str = "{name}") -> list[str]:
    """Prompts for a text-conditioned generator: mapped names in the template.

    Refuses WordNet-id folder names without a map (a prompt "n01440764" means nothing to SD).
    """
    if "{name}" not in template:
        raise ConfigError(f"prompt template {template!r} has no {{name}} placeholder", "e.g. 'a photo of a {name}'")
    names = []
    for key in class_names:
        if class_map is not None and key in class_map:
            name = class_map[key].name
        elif WNID.match(key):
            raise ConfigError(f"class folder {key!r} is a WordNet id, not words for a prompt",
                              "pass a class map (e.g. ImageNet's LOC_synset_mapping.txt) or rename the folders")
        else:
            name = key.replace("_", " ")
        names.append(template.format(name=name))
    return names


def model_class_ids(class_names: Sequence[str], model_classes: int | None,
                    class_map: dict[str, ClassEntry] | None = None) -> list[int] | None:
    """The model's class id for each data class, or None when ids coincide (same count, no map).

    With a map, every data class must have an index < model_classes; without one, the counts
    must match. Either way a mismatch is a ConfigError, never a silent relabelling.
    """
    if model_classes is None:
        return None
    if class_map is None:
        if len(class_names) != model_classes:
            raise ModelError(f"the model has {model_classes} classes but the data has {len(class_names)}",
                             "pass a class map (data folder → model class index, e.g. LOC_synset_mapping.txt "
                             "for an ImageNet-1k model) or use a model trained on these classes")
        return None
    missing = [k for k in class_names if k not in class_map or class_map[k].index is None]
    if missing:
        raise ConfigError(f"the class map places no model class for {len(missing)} data class(es), e.g. "
                          f"{missing[:3]}", "give a map with an index for every data class folder")
    ids = [class_map[k].index for k in class_names]
    bad = [i for i in ids if not 0 <= i < model_classes]
    if bad:
        raise ConfigError(f"class map indices {bad[:3]} lie outside the model's 0..{model_classes - 1}",
                          "use a map in the model's class order (ImageNet-1k for DiT-XL/2)")
    if len(set(ids)) != len(ids):
        raise ConfigError("the class map sends two data classes to the same model class",
                          "every data class needs its own model class")
    return ids


__all__ = ["ClassEntry", "DIT_DEFAULTS", "GENERIC_DEFAULTS", "SD_DEFAULTS", "default_sampling", "model_class_ids",
           "model_family", "prompt_names", "read_class_map"]
