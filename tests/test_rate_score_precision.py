"""`practicum rate | score --device --dtype` (issue 16, item 1) on the CPU: bf16/fp16 runs, tolerances, bad values.

Stated tolerance (bf16 scoring of the same rater, instance mode, digits train split): every rating
within 2 % of the fp32 ratings' range of its fp32 value, and rank correlation ≥ 0.98 (measured:
0.7 % and 0.994; fp16: 0.07 % and 0.999).
"""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from safetensors.numpy import load_file

from cli_helpers import assert_rate_resumes_exactly, run_cli

RATE = ["--data", "digits", "--proxy", "classifier", "--epochs", "2", "--iterations-per-epoch", "2", "--batch-size", "32", "--proxy-warmup", "20"]


def _ranks(values):
    return np.argsort(np.argsort(values)).astype(float)


def test_bf16_rate_and_score_run_and_score_like_fp32(tmp_path):
    assert run_cli("rate", "--out", str(tmp_path / "r32"), *RATE) == 0
    assert run_cli("rate", "--out", str(tmp_path / "r16"), *RATE, "--dtype", "bf16", "--device", "cpu") == 0
    config = yaml.safe_load((tmp_path / "r16" / "config.yaml").read_text())
    assert config["rater"]["dtype"] == "bf16" and config["rater"]["device"] == "cpu"
    weights = load_file(str(tmp_path / "r16" / "rater.safetensors"))
    assert {w.dtype for w in weights.values()} == {np.dtype("float32")}  # master weights stay fp32
    reference = load_file(str(tmp_path / "r32" / "rater.safetensors"))
    assert any(not np.array_equal(weights[k], reference[k]) for k in weights)  # bf16 really ran

    tables = {}
    for dtype in ("fp32", "bf16"):
        out = tmp_path / f"s-{dtype}"
        assert run_cli("score", "--out", str(out), "--rater", str(tmp_path / "r32"), "--data", "digits",
                       "--mode", "instance", "--dtype", dtype) == 0
        tables[dtype] = pq.read_table(out / "scores.parquet")
    a, b = tables["fp32"], tables["bf16"]
    assert a.schema == b.schema and a.column("id").equals(b.column("id")) and a.column("label").equals(b.column("label"))
    x, y = a.column("score").to_numpy(), b.column("score").to_numpy()
    assert not np.array_equal(x, y)
    assert np.abs(x - y).max() < 0.02 * (x.max() - x.min())
    assert np.corrcoef(_ranks(x), _ranks(y))[0, 1] > 0.98


def test_fp16_rate_scales_its_losses_and_resumes_exactly(tmp_path, monkeypatch):
    assert_rate_resumes_exactly(tmp_path, monkeypatch, [*RATE, "--dtype", "fp16"])
    state = json.loads(next((tmp_path / "straight" / "checkpoints").glob("state-epoch*/state.json")).read_text())
    assert set(state["grad_scalers"]) == {"rater", "proxy"} and state["grad_scalers"]["rater"]["scale"] > 1


@pytest.mark.parametrize("args, message", [
    (["rate", "--out", "{tmp}/a", "--dtype", "fp8"], "dtype"),
    (["rate", "--out", "{tmp}/b", "--device", "cuda:0"], "CUDA is not available"),
    (["score", "--out", "{tmp}/c", "--rater", "{tmp}/none", "--dtype", "int8"], "dtype"),
    (["score", "--out", "{tmp}/d", "--rater", "{tmp}/none", "--device", "toaster"], "unknown device"),
    (["score", "--out", "{tmp}/e", "--scorer", "random", "--dtype", "bf16"], "apply to the rater"),
])
def test_bad_device_or_dtype_gives_one_clear_error(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) <= 2  # the error and its fix
