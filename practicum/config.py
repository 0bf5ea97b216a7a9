"""Settings for every command: pydantic models, YAML in, resolved YAML out.

Each command defines a subclass of `Settings`. A run writes `config.yaml` with every field
resolved (defaults included), so the folder alone says how it was produced, and
`Settings.from_yaml` reads it back for `--resume` or `--config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from practicum.errors import ConfigError
from practicum.files import read_text

S = TypeVar("S", bound="Settings")


class Settings(BaseModel):
    """Base for command settings: unknown keys are errors, values are validated on assignment,
    and no float may be nan or infinite (a non-finite learning rate or guidance strength would
    run to the end and write NaN weights or samples)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)

    @classmethod
    def build(cls: type[S], values: dict[str, Any] | None = None, **overrides: Any) -> S:
        """Validate `values` updated with the non-None `overrides` (CLI flags left unset are None)."""
        merged = dict(values or {})
        merged.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, cls.__name__), "fix the setting named above") from None

    @classmethod
    def from_yaml(cls: type[S], path: str | Path, **overrides: Any) -> S:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist", "give the path of a YAML file")
        text = read_text(path, ConfigError, "give a UTF-8 YAML file")
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}".splitlines()[0], "fix the YAML syntax") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path} must hold a mapping of settings, not {type(values).__name__}")
        refuse_code_names(values, path)
        return cls.build(values, **overrides)

    @classmethod
    def base_values(cls, config: str | Path | None, out: str | Path, resume: bool) -> dict[str, Any]:
        """What a command's flags update (one `--resume` behaviour for every command): the values --config
        sets, else on --resume the run's own config.yaml (so a bare --resume continues as started), else none."""
        if config is not None:
            cls.from_yaml(config)  # a bad file fails here, with its own message
            return yaml.safe_load(Path(config).read_text()) or {}
        if resume and (Path(out) / "config.yaml").is_file():
            return cls.from_yaml(Path(out) / "config.yaml").model_dump(mode="json")
        return {}

    @classmethod
    def from_flags(cls: type[S], config: str | Path | None, out: str | Path, resume: bool,
                   flags: dict[str, Any]) -> S:
        """The one path from a command line to settings: `base_values` updated by the flags given
        (None is "not given"; a nested mapping such as `student:` or `source:` merges key by key)."""
        return cls.build(merge_values(cls.base_values(config, out, resume), given(flags)))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# Run-time choices: where and how fast a run computes, not what it computes. A resume compares the
# settings without them, so a run started on one engine (device, thread count) continues on another.
RUNTIME_KEYS = frozenset({"engine", "device", "threads"})


def merge_values(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`update` over `base`, nested mappings key by key (neither argument is changed)."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge_values(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def given(flags: dict[str, Any]) -> dict[str, Any]:
    """The flags that were given: None values dropped, nested mappings too (and emptied ones)."""
    out = {}
    for key, value in flags.items():
        value = given(value) if isinstance(value, dict) else value
        if value is not None and value != {}:
            out[key] = value
    return out


def refuse_code_names(values: Any, path: Path, where: str = "") -> None:
    """A file may name only registered architectures, never code to import ('module:factory').

    A custom learner is a command-line choice (`--learner module:factory`); a config file, and so a
    run's own config.yaml read back by `--resume`, cannot make practicum import anything."""
    if isinstance(values, dict):
        for key, value in values.items():
            name = f"{where}.{key}" if where else str(key)
            if str(key).endswith("arch") and isinstance(value, str) and ":" in value:
                raise ConfigError(f"{path}: {name} names code to import ({value!r}); a file may name only a "
                                  "registered architecture", f"pass --learner {value} on the command line instead")
            refuse_code_names(value, path, name)
    elif isinstance(values, list):
        for item in values:
            refuse_code_names(item, path, where)


def _describe(exc: ValidationError, model: str) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or model
        msg = " ".join(str(err["msg"]).split())  # one line, whatever the validator wrote
        if err.get("type") == "extra_forbidden":
            msg = "unknown key (check its spelling against the documented settings)"
        elif err.get("type") == "missing":
            msg = "not given (give it on the command line or in --config)"
        parts.append(f"{where}: {msg}")
    return f"invalid settings for {model}: " + "; ".join(parts)
