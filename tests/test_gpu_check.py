"""Issue 16: the prepared GPU check runs end to end at tiny sizes on the CPU and writes its JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_tiny_on_cpu(gpu_check, tmp_path, capsys):
    out = tmp_path / "gpu.json"
    result = gpu_check.main(["--tiny", "--device", "cpu", "--dtype", "fp32", "--out", str(out), "--steps", "2"])
    stored = json.loads(out.read_text())
    assert stored["tiny"] is True and stored["skipped"] == []
    for key in ("sd15", "dit_xl2"):
        assert "error" not in stored[key], stored[key]
        assert stored[key]["unguided"]["finite"] and stored[key]["entropy"]["finite"]
        assert stored[key]["entropy"]["seconds_per_image"] > 0
    assert stored["dit_xl2"]["mode"]["retries"] == 0
    assert stored["micro_batch"]["largest_fitting"] == 4 and stored["micro_batch"]["capped"]
    assert stored["learners"]["resnet50"]["images_per_second"] > 0
    assert "largest guidance micro-batch" in capsys.readouterr().out
    assert result["total_seconds"] > 0


def test_published_shapes_are_the_papers(gpu_check):
    # the configs the GPU run builds: SD-1.5's UNet and DiT-XL/2 (checked without building them)
    assert gpu_check.SD15_UNET["block_out_channels"] == (320, 640, 1280, 1280)
    assert gpu_check.SD15_UNET["cross_attention_dim"] == 768
    assert gpu_check.DIT_XL2["num_layers"] == 28 and gpu_check.DIT_XL2["num_attention_heads"] * \
        gpu_check.DIT_XL2["attention_head_dim"] == 1152
    full = gpu_check.sizes(False)
    assert full["steps"] == 50 and full["learner_size"] == 224 and full["vae"]["sample_size"] == 512
