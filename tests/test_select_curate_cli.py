"""`practicum dedup | label-issues | cover` on the digits pool with injected defects, and their use as filters."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from cli_helpers import run_cli
from practicum.select.pool import write_embeddings


def _rates(summary_by_kind):
    return {k: v["flagged"] / v["pool"] for k, v in summary_by_kind.items()}


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    root = tmp_path_factory.mktemp("curate")
    assert run_cli("dedup", "--out", str(root / "dedup"), "--data", "digits", "--defects") == 0
    assert run_cli("label-issues", "--out", str(root / "labels"), "--data", "digits", "--defects", "--folds", "3") == 0
    return root


def test_dedup_flags_the_injected_duplicates(curated):
    summary = json.loads((curated / "dedup" / "summary.json").read_text())
    rates = _rates(summary["removed_by_kind"])
    assert rates["duplicate"] > 0.5 and rates["clean"] < 0.05
    table = pq.read_table(curated / "dedup" / "scores.parquet")
    assert table.num_rows == 987 and set(table.column("score").to_pylist()) == {0.0, 1.0}
    assert summary["kept"] == sum(table.column("score").to_pylist())


def test_label_issues_flag_the_wrong_labels(curated):
    summary = json.loads((curated / "labels" / "summary.json").read_text())
    rates = _rates(summary["issues_by_kind"])
    assert rates["wrong_label"] > 0.5 and rates["clean"] < 0.15
    table = pq.read_table(curated / "labels" / "scores.parquet")
    assert {"quality", "score", "kind"} <= set(table.column_names)


def test_filters_intersect_in_select(curated, tmp_path):
    """The two keep-scores as --filter RUN:1: on a third scores file: nothing flagged survives."""
    out = tmp_path / "sel"
    assert run_cli("select", "--scores", str(curated / "dedup"), "--out", str(out), "--strategy", "random",
                   "--keep", "0.5", "--filter", f"{curated / 'dedup'}:1:", "--filter", f"{curated / 'labels'}:1:") == 0
    chosen = set(pq.read_table(out / "manifest.parquet").column("id").to_pylist())
    for name in ("dedup", "labels"):
        t = pq.read_table(curated / name / "scores.parquet")
        flagged = {i for i, s in zip(t.column("id").to_pylist(), t.column("score").to_pylist()) if s == 0}
        assert not chosen & flagged


@pytest.mark.parametrize("method", ["k-center", "herding", "facility-location"])
def test_cover_is_class_balanced_and_covers(tmp_path, method):
    rng = np.random.default_rng(0)
    # two classes, each a tight blob plus a few far points that k-center must take
    x = np.concatenate([rng.normal(0, 0.1, (40, 3)), rng.normal(0, 0.1, (40, 3)) + 5])
    x[[0, 40]] += 3
    y = np.repeat([0, 1], 40)
    write_embeddings(tmp_path / "e.parquet", [f"e{i}" for i in range(80)], y, x)
    out = tmp_path / method
    assert run_cli("cover", "--out", str(out), "--embeddings", str(tmp_path / "e.parquet"), "--method", method,
                   "--keep", "0.1") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selected"] == 8 and summary["class_counts"] == [4, 4]
    ids = set(pq.read_table(out / "manifest.parquet").column("id").to_pylist())
    if method == "k-center":
        assert {"e0", "e40"} <= ids  # the outliers are the worst covered


@pytest.mark.parametrize("args, message", [
    (["dedup", "--out", "{tmp}/a", "--method", "phash", "--embeddings", "{tmp}/e.parquet"], "needs images"),
    (["dedup", "--out", "{tmp}/b", "--method", "md5", "--data", "digits"], "method"),
    (["label-issues", "--out", "{tmp}/c", "--data", "digits", "--folds", "1"], "folds"),
    (["cover", "--out", "{tmp}/d", "--data", "digits", "--keep", "2.5"], "keep"),
])
def test_bad_input_gives_one_clear_error(tmp_path, capsys, args, message):
    write_embeddings(tmp_path / "e.parquet", ["a", "b"], [0, 1], np.eye(2))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err and "Traceback" not in err


def test_limit_takes_a_fixed_subset_and_a_bare_resume_reuses_the_run(tmp_path):
    out = tmp_path / "small"
    assert run_cli("dedup", "--out", str(out), "--data", "digits", "--limit", "200", "--max-distance", "2") == 0
    summary = json.loads((out / "summary.json").read_text())
    ids = pq.read_table(out / "scores.parquet").column("id").to_pylist()
    assert summary["examples"] == len(ids) == 200 and len(set(ids)) == 200
    assert run_cli("dedup", "--out", str(out), "--resume") == 0  # its own settings, not the defaults
    assert pq.read_table(out / "scores.parquet").column("id").to_pylist() == ids
    assert run_cli("dedup", "--out", str(tmp_path / "again"), "--data", "digits", "--limit", "200") == 0
    assert pq.read_table(tmp_path / "again" / "scores.parquet").column("id").to_pylist() == ids  # the same rows


def test_cover_warns_when_it_keeps_the_noise(tmp_path):
    """k-center on clean blobs plus far-off noise keeps the noise first and says so; herding does not."""
    rng = np.random.default_rng(0)
    clean = np.concatenate([rng.normal(0, 0.3, (95, 4)), rng.normal(0, 0.3, (95, 4)) + 3])
    noise = rng.uniform(-20, 20, (10, 4))
    x, y = np.concatenate([clean, noise]), np.concatenate([np.repeat([0, 1], 95), np.arange(10) % 2])
    write_embeddings(tmp_path / "e.parquet", [f"e{i}" for i in range(200)], y, x)
    for method, warned in (("k-center", True), ("herding", False)):
        assert run_cli("cover", "--out", str(tmp_path / method), "--embeddings", str(tmp_path / "e.parquet"),
                       "--method", method, "--keep", "0.1") == 0
        warnings = json.loads((tmp_path / method / "summary.json").read_text())["warnings"]
        assert bool(warnings) is warned and all("outliers" in w for w in warnings)


def test_semdedup_that_removes_most_of_the_pool_warns(tmp_path):
    rng = np.random.default_rng(0)
    x = np.repeat(rng.normal(size=(5, 4)), 20, axis=0) + rng.normal(0, 1e-4, (100, 4))  # 5 points, 20 copies each
    write_embeddings(tmp_path / "e.parquet", [f"e{i}" for i in range(100)], np.arange(100) % 2, x)
    assert run_cli("dedup", "--out", str(tmp_path / "d"), "--embeddings", str(tmp_path / "e.parquet"),
                   "--method", "semdedup", "--clusters", "5") == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["removed"] >= 90 and "dedup removed" in summary["warnings"][0]


def test_select_warns_when_the_score_ranks_classes(tmp_path):
    import pyarrow as pa

    labels = np.repeat([0, 1, 2], 30)
    for name, score in (("by_class", labels + np.random.default_rng(0).uniform(0, 0.5, 90)),
                        ("within", np.random.default_rng(1).uniform(size=90))):
        pq.write_table(pa.table({"id": [f"x{i}" for i in range(90)], "label": labels, "score": score}),
                       tmp_path / f"{name}.parquet")
        assert run_cli("select", "--scores", str(tmp_path / f"{name}.parquet"), "--out", str(tmp_path / name),
                       "--keep", "0.5") == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        flagged = any("mostly ranks classes" in w for w in summary["warnings"])
        assert flagged is (summary["class_rank_share"] > 0.5) and flagged is (name == "by_class")


def test_ctrl_c_before_the_first_result_removes_the_run_and_says_resume_starts_afresh(tmp_path, capsys,
                                                                                       monkeypatch):
    from practicum.select import curate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "d"
    monkeypatch.setattr(curate, "load_features", interrupted)
    assert run_cli("dedup", "--out", str(out), "--data", "digits", "--limit", "50") == 130
    assert not out.exists() and "starts it afresh" in capsys.readouterr().err
    monkeypatch.undo()
    assert run_cli("dedup", "--out", str(out), "--data", "digits", "--limit", "50", "--resume") == 0
    assert json.loads((out / "summary.json").read_text())["examples"] == 50
