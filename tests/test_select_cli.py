"""`practicum rate | score | select` on a tiny budget: round trip, resume, bad input."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from cli_helpers import assert_rate_resumes_exactly, run_cli
from practicum.select import pipeline
from practicum.select.pool import write_embeddings


@pytest.fixture(scope="module")
def rater_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rate") / "rater"
    code = run_cli("rate", "--out", str(out), "--data", "digits", "--defects", "--proxy", "classifier", "--epochs", "2",
                   "--iterations-per-epoch", "2",
                   "--batch-size", "32", "--proxy-warmup", "20")
    assert code == 0
    return out


def test_round_trip_rate_score_select(rater_run, tmp_path):
    assert (rater_run / "rater.safetensors").is_file()
    assert sorted(p.name for p in (rater_run / "checkpoints").glob("rater-*.safetensors")) == \
        ["rater-epoch000.safetensors", "rater-epoch001.safetensors"]
    scores_dir = tmp_path / "scores"
    assert run_cli("score", "--out", str(scores_dir), "--rater", str(rater_run), "--data", "digits", "--defects",
                   "--shard-size", "400") == 0
    table = pq.read_table(scores_dir / "scores.parquet")
    assert table.num_rows == 987 and set(table.column_names) >= {"id", "label", "score", "kind"}
    # shards hold whole rating batches (256): a shard size of 400 gives one batch each, 4 shards
    assert len(list((scores_dir / "parts").glob("part-*.parquet"))) == 4
    summary = json.loads((scores_dir / "summary.json").read_text())
    assert summary["examples"] == 987 and summary["examples_per_second"] > 0

    manifest_dir = tmp_path / "manifest"
    assert run_cli("select", "--scores", str(scores_dir), "--out", str(manifest_dir), "--strategy",
                   "shift-gsample", "--keep", "0.5", "--no-balance") == 0
    manifest = pq.read_table(manifest_dir / "manifest.parquet")
    assert manifest.num_rows == round(0.5 * 987)
    ids = set(table.column("id").to_pylist())
    assert set(manifest.column("id").to_pylist()) <= ids
    # Shift-Gsample at 50 % never takes the top quarter of the ranking
    assert min(manifest.column("rank").to_pylist()) >= int(0.25 * 987)
    chosen = json.loads((manifest_dir / "summary.json").read_text())
    assert chosen["selected"] == manifest.num_rows and "kind_counts" in chosen
    assert chosen["direction"] == "higher_is_better" and chosen["inclusion_by_decile"][:2] == [0.0, 0.0]

    # a count budget, class balanced
    assert run_cli("select", "--scores", str(scores_dir / "scores.parquet"), "--out", str(tmp_path / "m2"),
                   "--strategy", "top-k", "--keep", "100", "--balance") == 0
    assert pq.read_table(tmp_path / "m2" / "manifest.parquet").num_rows == 100


def test_rate_writes_its_gates_and_a_four_step_rater_fails_them(rater_run):
    gates = json.loads((rater_run / "summary.json").read_text())["gates"]
    assert set(gates["kind_rank"]) == {"clean", "wrong_label", "duplicate", "noise"}
    assert gates["seed_spearman"] is None and "seeds" not in gates["checks"]  # --seed-check is off by default
    # four rater steps cannot leave the initialisation: the run says so instead of passing
    assert gates["init_spearman"] > 0.5 and "init" in gates["failed"] and gates["passed"] is False


def test_rate_prints_its_gates_with_a_second_seed(tmp_path, capsys):
    assert run_cli("rate", "--out", str(tmp_path / "r"), "--data", "digits", "--defects", "--proxy", "classifier",
                   "--epochs", "1", "--iterations-per-epoch", "2", "--batch-size", "16", "--proxy-warmup", "5",
                   "--seed-check") == 0
    out = capsys.readouterr().out
    for start in ("gate init: Spearman with the untrained rater", "gate loss:", "gate seeds: Spearman with a second seed",
                  "gate kinds: mean rank percentile", "warning: the rater failed its gates"):
        assert start in out
    gates = json.loads((tmp_path / "r" / "summary.json").read_text())["gates"]
    assert gates["seed_spearman"] is not None and "seeds" in gates["checks"]


def test_score_resume_recomputes_only_missing_shards(rater_run, tmp_path):
    out = tmp_path / "scores"
    assert run_cli("score", "--out", str(out), "--rater", str(rater_run), "--data", "digits", "--shard-size", "400") == 0
    first = pq.read_table(out / "scores.parquet")
    parts = sorted((out / "parts").glob("part-*.parquet"))
    kept_mtime = parts[0].stat().st_mtime_ns
    parts[1].unlink()
    assert run_cli("score", "--out", str(out), "--rater", str(rater_run), "--data", "digits", "--shard-size", "400") == 2  # no silent rerun
    assert run_cli("score", "--out", str(out), "--resume") == 0
    assert parts[0].stat().st_mtime_ns == kept_mtime
    assert pq.read_table(out / "scores.parquet").equals(first)


def test_rate_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    assert_rate_resumes_exactly(tmp_path, monkeypatch,
                                ["--data", "digits", "--proxy", "classifier", "--epochs", "2", "--iterations-per-epoch",
                                 "2", "--batch-size", "16", "--proxy-warmup", "20"])


def test_embeddings_pool_scores_in_row_group_shards(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, size=(3, 6))
    for name, n in (("train", 120), ("val", 60)):
        y = rng.integers(0, 3, size=n)
        write_embeddings(tmp_path / f"{name}.parquet", [f"{name}-{i}" for i in range(n)], y,
                         centres[y] + rng.normal(size=(n, 6)), row_group_size=25)
    rater_dir = tmp_path / "rater"
    assert run_cli("rate", "--out", str(rater_dir), "--embeddings", str(tmp_path / "train.parquet"),
                   "--val-embeddings", str(tmp_path / "val.parquet"), "--epochs", "1",
                   "--iterations-per-epoch", "3", "--batch-size", "16") == 0
    assert run_cli("score", "--out", str(tmp_path / "s"), "--rater", str(rater_dir), "--embeddings",
                   str(tmp_path / "train.parquet"), "--shard-size", "50") == 0
    table = pq.read_table(tmp_path / "s" / "scores.parquet")
    assert table.num_rows == 120 and table.column("id").to_pylist()[:2] == ["train-0", "train-1"]
    assert len(list((tmp_path / "s" / "parts").glob("*.parquet"))) == 3  # 5 row groups of 25, two per shard


def test_heuristic_scorer_through_the_cli(tmp_path):
    assert run_cli("score", "--out", str(tmp_path / "r"), "--scorer", "random", "--data", "digits", "--seed", "3") == 0
    table = pq.read_table(tmp_path / "r" / "scores.parquet")
    assert table.num_rows == 987


@pytest.mark.parametrize("args, message", [
    (["select", "--scores", "missing.parquet", "--out", "{tmp}/a"], "no scores"),
    (["select", "--out", "{tmp}/b"], "no scores"),
    (["rate", "--out", "{tmp}/c", "--update-rule", "second_order"], "update_rule"),
    (["score", "--out", "{tmp}/d"], "needs a trained rater"),
    (["score", "--out", "{tmp}/e", "--scorer", "vibes"], "unknown scorer"),
    (["rate", "--out", "{tmp}/f", "--embeddings", "{tmp}/none.parquet", "--val-embeddings", "x"], "does not exist"),
])
def test_bad_input_gives_one_clear_error(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err and "Traceback" not in err


def test_select_rejects_bad_budgets_and_strategies(tmp_path, capsys):
    scores = tmp_path / "scores.parquet"
    import pyarrow as pa

    pq.write_table(pa.table({"id": [f"x{i}" for i in range(10)], "score": np.arange(10.0)}), scores)
    assert run_cli("select", "--scores", str(scores), "--out", str(tmp_path / "a"), "--keep", "1.5") == 2
    assert run_cli("select", "--scores", str(scores), "--out", str(tmp_path / "b"), "--strategy", "best") == 2
    assert run_cli("select", "--scores", str(scores), "--out", str(tmp_path / "c"), "--keep", "0.3",
                   "--strategy", "top-k") == 0
    assert pq.read_table(tmp_path / "c" / "manifest.parquet").column("id").to_pylist() == ["x7", "x8", "x9"]
    pq.write_table(pa.table({"id": ["a", "a"], "score": [1.0, 2.0]}), tmp_path / "dup.parquet")
    assert run_cli("select", "--scores", str(tmp_path / "dup.parquet"), "--out", str(tmp_path / "d")) == 2
    assert "not unique" in capsys.readouterr().err


def test_score_config_validation():
    with pytest.raises(Exception):
        pipeline.ScoreSettings.build({"shard_size": "many"})


def test_adaptive_strategy_through_the_cli(tmp_path, capsys):
    import pyarrow as pa

    scores = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"id": [f"x{i}" for i in range(40)], "score": np.arange(40.0)}), scores)
    laws = tmp_path / "laws.json"
    laws.write_text(json.dumps({"a": 0.025 * 12.8e6 / 10, "buckets": [
        {"b": -0.16, "tau": 6.73}, {"b": -0.125, "tau": 8.55}, {"b": -0.10, "tau": 5.27}, {"b": -0.085, "tau": 2.27}]}))
    assert run_cli("select", "--scores", str(scores), "--out", str(tmp_path / "a"), "--strategy", "adaptive",
                   "--budget-samples", str(640e6 / (12.8e6 / 10)), "--pool-laws", str(laws),
                   "--direction", "higher_is_better") == 0
    manifest = pq.read_table(tmp_path / "a" / "manifest.parquet")
    assert sorted(manifest.column("rank").to_pylist()) == list(range(20))  # the top two buckets of ten
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["adaptive"]["best_k"] == 2
    assert run_cli("select", "--scores", str(scores), "--out", str(tmp_path / "b"), "--strategy", "adaptive") == 2
    assert "--direction" in capsys.readouterr().err  # a bare parquet does not say which end is best
    assert run_cli("select", "--scores", str(scores), "--out", str(tmp_path / "b"), "--strategy", "adaptive",
                   "--direction", "higher_is_better") == 2
    assert "--budget-samples" in capsys.readouterr().err
