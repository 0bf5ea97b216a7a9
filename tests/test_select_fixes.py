"""Issue 14 fixes: Shift-Gsample's default shape, inclusion profiles, score direction, class effects,
batch-layout-free group ratings, weight-decay groups, δ presets."""

import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from torch import nn

from practicum.select import adaptive, pipeline
from practicum.select import selectors as sel
from practicum.select.nets import DiffusionProxy, RaterNet
from practicum.select.rater import decay_groups, rate, rater_meta, save_rater


def _scores_file(path, scores, labels=None, direction=None):
    path.mkdir(parents=True, exist_ok=True)
    columns = {"id": pa.array([f"e{i}" for i in range(len(scores))]), "score": pa.array(np.asarray(scores, float))}
    if labels is not None:
        columns["label"] = pa.array(np.asarray(labels, dtype=np.int64))
    pq.write_table(pa.table(columns), path / "scores.parquet")
    if direction is not None:
        (path / "summary.json").write_text(json.dumps({"direction": direction}))
    return path


# ---------------------------------------------------------------- shape and profile

def test_default_shape_keeps_the_bottom_less_often_than_random():
    n = 1000
    scores = np.arange(n, dtype=float)[::-1]  # index i has rank i
    ranking = sel.rank_descending(scores)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default raises no bottom warning
        chosen = sel.shift_gsample(scores, 0.5, seed=0)
    profile = sel.inclusion_by_decile(chosen, n, ranking)
    assert np.mean(profile[7:]) < 0.5 and profile[9] < 0.05  # random keeps 0.5 of every decile
    assert profile[0] == profile[1] == 0.0  # the top quarter is dropped
    with pytest.warns(sel.SelectionWarning, match="bottom 30"):
        sel.shift_gsample(scores, 0.5, shape="m2_std3", seed=0)  # the spec's guess keeps it more often


def test_inclusion_by_decile_and_bottom_warning_hand_checked():
    ranking = np.arange(20)  # index = rank
    assert sel.inclusion_by_decile([0, 1, 2, 19], 20, ranking) == [1.0, 0.5] + [0.0] * 7 + [0.5]
    assert sel.bottom_warning([0.5] * 10, 0.5) is None
    assert "bottom 30" in sel.bottom_warning([0.0] * 7 + [0.6] * 3, 0.5)


def test_select_summary_has_the_profile_and_warns(tmp_path):
    scores = _scores_file(tmp_path / "s", np.arange(400, dtype=float), direction="higher_is_better")
    out = pipeline.run_select(pipeline.SelectSettings(scores=str(scores), shape="m2_std3", keep=0.5), tmp_path / "a")
    assert len(out["inclusion_by_decile"]) == 10 and any("bottom 30" in w for w in out["warnings"])
    out = pipeline.run_select(pipeline.SelectSettings(scores=str(scores), keep=0.5), tmp_path / "b")
    assert out["warnings"] == [] and out["inclusion_by_decile"][0] == 0.0


def test_prune_top_follows_the_preset_table():
    assert sel.default_prune_top(0.8) == pytest.approx(0.15)
    assert sel.default_prune_top(0.9) == pytest.approx(0.05)
    assert sel.default_prune_top(0.95) == pytest.approx(0.025)
    assert sel.default_prune_top(1.0) == 0.0


# ---------------------------------------------------------------- direction

def test_ccs_prunes_the_hard_end_the_direction_names():
    scores = np.arange(10, dtype=float)
    harder = sel.ccs(scores, 5, prune_hard=0.2, strata=1, direction="higher_is_harder")
    better = sel.ccs(scores, 5, prune_hard=0.2, strata=1, direction="higher_is_better")
    assert not {8, 9} & set(harder.tolist())  # highest hardness dropped
    assert not {0, 1} & set(better.tolist())  # lowest ratings dropped


def test_select_reads_the_written_direction(tmp_path):
    scores = np.arange(100, dtype=float)
    rated = _scores_file(tmp_path / "rated", scores, direction="higher_is_better")
    out = pipeline.run_select(pipeline.SelectSettings(scores=str(rated), strategy="ccs", keep=0.5, prune_hard=0.2,
                                                    strata=1), tmp_path / "m")
    kept = pq.read_table(tmp_path / "m" / "manifest.parquet").column("score").to_numpy()
    assert out["direction"] == "higher_is_better" and kept.min() >= 20  # the 20 lowest ratings pruned
    unknown = _scores_file(tmp_path / "plain", scores)
    with pytest.raises(pipeline.ConfigError, match="direction"):
        pipeline.run_select(pipeline.SelectSettings(scores=str(unknown), strategy="ccs"), tmp_path / "n")


def test_adaptive_bucket_zero_is_the_best_quality_end():
    scores = np.arange(8, dtype=float)
    assert adaptive.bucket_indices(scores, 2, direction="higher_is_better")[0].tolist() == [4, 5, 6, 7]
    assert adaptive.bucket_indices(scores, 2, direction="higher_is_harder")[0].tolist() == [0, 1, 2, 3]


def test_score_summary_writes_a_machine_readable_direction():
    assert pipeline.score_direction("rater") == "higher_is_better"
    assert pipeline.score_direction("el2n") == "higher_is_harder"


# ---------------------------------------------------------------- class effects

def test_class_rank_share_and_within_class_normalisation_hand_checked():
    scores = np.array([3.0, 2.0, 1.0, 0.0])
    labels = np.array([0, 0, 1, 1])
    # ranks 0..3; class means 0.5 and 2.5 around 1.5 → between 1.0, total 1.25
    assert sel.class_rank_share(scores, labels) == pytest.approx(0.8)
    normed = sel.normalise_within_class(scores, labels)
    assert normed.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert sel.class_rank_share(normed, labels) == pytest.approx(0.0)


def test_select_balances_classes_by_default_when_scores_have_labels(tmp_path):
    labels = np.arange(100) % 2
    scores = np.where(labels == 0, 0.0, 10.0) + np.random.default_rng(0).random(100)  # class 0 rated low
    path = _scores_file(tmp_path / "s", scores, labels, "higher_is_better")
    out = pipeline.run_select(pipeline.SelectSettings(scores=str(path), strategy="top-k", keep=0.5), tmp_path / "m")
    assert out["balance"] is True and out["class_counts"] == [25, 25]
    assert out["class_rank_share"] > 0.7
    off = pipeline.run_select(pipeline.SelectSettings(scores=str(path), strategy="top-k", keep=0.5, balance=False),
                              tmp_path / "o")
    assert off["class_counts"] == [0, 50]


# ---------------------------------------------------------------- rating layout

def test_group_ratings_do_not_depend_on_the_shard_size(tmp_path):
    from practicum.data import load_source
    from practicum.select.rater import RaterTrainer, RaterSettings

    trainer = RaterTrainer(RaterSettings(), (1, 8, 8), 10)  # untrained: ratings still batch-relative
    save_rater(tmp_path / "r.safetensors", trainer.rater, rater_meta(trainer, 0))
    results = []
    for shard in (256, 768):
        config = pipeline.ScoreSettings(rater=str(tmp_path / "r.safetensors"), mode="group", shard_size=shard,
                                      split="val", source=pipeline.DataSettings(data="digits"))
        pipeline.run_score(config, tmp_path / f"s{shard}")
        results.append(pq.read_table(tmp_path / f"s{shard}" / "scores.parquet").to_pandas().set_index("id"))
    a, b = results
    assert np.allclose(a.loc[b.index, "score"].to_numpy(), b["score"].to_numpy())
    val = load_source("digits", "val")
    direct = rate(trainer.rater, val.images, val.labels, seed=0, mode="group")
    assert np.allclose(a.loc[np.asarray(val.ids).astype(str), "score"].to_numpy(), direct)


# ---------------------------------------------------------------- weight decay

def test_weight_decay_groups_follow_module_types():
    rater = RaterNet((1, 8, 8), 10)
    decay, no_decay = map(lambda ps: {id(p) for p in ps}, decay_groups(rater))
    film = rater.features
    assert id(film.label_scale.weight) in no_decay and id(film.label_shift.weight) in no_decay
    assert id(film.project.weight) in decay and id(film.project.bias) in no_decay

    class TimeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.time_embedding = nn.Linear(4, 4)  # a 2-D weight named "embedding": decayed
            self.norm = nn.LayerNorm(4)
            self.class_embedding = nn.Embedding(3, 4)

    net = TimeNet()
    decay, no_decay = map(lambda ps: {id(p) for p in ps}, decay_groups(net))
    assert id(net.time_embedding.weight) in decay
    assert {id(net.norm.weight), id(net.class_embedding.weight), id(net.time_embedding.bias)} <= no_decay
    proxy = DiffusionProxy((1, 8, 8), 10)
    assert id(proxy.class_embedding.weight) in {id(p) for p in decay_groups(proxy)[1]}


def test_select_thresholds_and_filters_intersect_before_the_budget(tmp_path):
    from practicum.cli import main

    main_scores = _scores_file(tmp_path / "a", np.arange(10, dtype=float), direction="higher_is_better")
    other = _scores_file(tmp_path / "b", np.array([1.0] * 5 + [0.0] * 5))  # a second filter, matched by id
    try:
        main(["--quiet", "select", "--scores", str(main_scores), "--out", str(tmp_path / "m"), "--strategy", "top-k",
              "--keep", "1.0", "--min-score", "2", "--filter", f"{other}:0.5:"])
    except SystemExit as exc:
        assert not exc.code
    kept = sorted(pq.read_table(tmp_path / "m" / "manifest.parquet").column("score").to_pylist())
    assert kept == [2.0, 3.0, 4.0]  # score >= 2 AND other >= 0.5
    out = pipeline.run_select(pipeline.SelectSettings(scores=str(main_scores), strategy="top-k", keep=2,
                                                    max_score=6.0), tmp_path / "n")
    assert out["passed_filters"] == 7
    assert sorted(pq.read_table(tmp_path / "n" / "manifest.parquet").column("score").to_pylist()) == [5.0, 6.0]


def test_commands_default_to_the_web_fashion_pool_with_the_diffusion_proxy():
    assert pipeline.DataSettings().data == "fashion-web"
    assert pipeline.RateSettings().rater.proxy == "diffusion"
    assert pipeline.ScoreSettings().mode == "instance"
    select = pipeline.SelectSettings(scores="x")
    assert select.shape == "figure" and select.balance is None and select.strategy == "shift-gsample"


def test_a_rate_run_that_names_no_proxy_gets_the_diffusion_proxy():
    """The CLI passes its rater flags as a dict; one without --proxy must not fall back to the classifier."""
    assert pipeline.RateSettings.build({"rater": {}}).rater.proxy == "diffusion"
    assert pipeline.RateSettings.build({"rater": {"epochs": 2}}).rater.proxy == "diffusion"
    assert pipeline.RateSettings.build({"rater": {"proxy": "classifier"}}).rater.proxy == "classifier"
