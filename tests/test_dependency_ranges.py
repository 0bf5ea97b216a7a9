"""pyproject's ranges keep a user's own torch: any supported build satisfies them, and installing
practicum into this environment installs nothing but practicum (the torch already here is kept)."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _requirement(name):
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    found = [Requirement(d) for d in deps if Requirement(d).name == name]
    assert len(found) == 1, f"one {name} requirement expected"
    return found[0].specifier


def test_other_supported_torch_builds_satisfy_the_requirement():
    torch = _requirement("torch")
    for version in ("2.3.0", "2.4.0", "2.5.1+cu121", "2.13.0", "2.13.0+cpu", "2.14.1", "2.20.0+rocm6.4"):
        assert torch.contains(version), version
    for version in ("2.2.2", "1.13.1", "3.0.0"):
        assert not torch.contains(version), version
    diffusers = _requirement("diffusers")
    assert all(diffusers.contains(v) for v in ("0.29.0", "0.35.2", "0.42.1", "0.50.0"))
    assert not diffusers.contains("0.28.2")


def test_installing_practicum_here_keeps_the_installed_torch(tmp_path):
    """`pip install -e .` resolved with no index: it must be satisfied by what is installed, torch included."""
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
                           "--quiet", "--report", str(report), "-e", str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    planned = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert planned == ["practicum"]
