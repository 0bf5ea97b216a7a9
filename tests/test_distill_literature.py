"""Protocol A-full (issue 27): the literature's DSA, ConvNet, normalisation, schedule and student count."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from practicum.distill import literature as lit
from practicum.distill.protocol import StudentSettings, train_student
from practicum.errors import ConfigError, PracticumError


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- DSA, one hand-checked case per operation

def test_brightness_adds_one_offset_per_image_within_half():
    x = torch.randn(8, 1, 6, 6)
    out = lit.brightness(x, _gen(4))
    expected = torch.rand(8, generator=_gen(4)) - 0.5  # the same draw: U(0, 1) − 0.5, × brightness 1.0
    delta = out - x
    assert torch.allclose(delta, expected.view(-1, 1, 1, 1).expand_as(x), atol=1e-6)
    assert delta.abs().max() <= 0.5


def test_saturation_is_identity_on_grey_and_scales_chroma_on_rgb():
    grey = torch.randn(5, 1, 4, 4)
    assert torch.allclose(lit.saturation(grey, _gen(1)), grey)  # one channel: its own mean
    rgb = torch.zeros(3, 3, 2, 2)
    rgb[:, 0], rgb[:, 2] = 1.0, -1.0  # channel mean 0 at every pixel, chroma ±1
    factor = torch.rand(3, generator=_gen(2)) * 2.0  # U(0, 2)
    out = lit.saturation(rgb, _gen(2))
    assert torch.allclose(out[:, 0], factor.view(-1, 1, 1).expand(3, 2, 2))
    assert torch.allclose(out.mean(dim=1), torch.zeros(3, 2, 2), atol=1e-6)


def test_contrast_keeps_the_image_mean_and_scales_deviations():
    x = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]]]])  # mean 3, deviations −3, −1, 1, 3
    factor = float(torch.rand(1, generator=_gen(7))) + 0.5  # U(0.5, 1.5)
    out = lit.contrast(x, _gen(7))
    assert torch.allclose(out, (x - 3.0) * factor + 3.0)
    assert 0.5 <= factor <= 1.5


def test_crop_translates_by_whole_pixels_and_fills_with_zero():
    n, side = 16, 28
    x = torch.arange(1, side * side + 1, dtype=torch.float32).view(1, 1, side, side).repeat(n, 1, 1, 1)
    out = lit.crop(x, _gen(3))
    g = _gen(3)
    ty = torch.randint(-4, 5, (n, 1), generator=g)  # ⌊28 · 0.125 + 0.5⌋ = 4 pixels
    tx = torch.randint(-4, 5, (n, 1), generator=g)
    for k in range(n):
        dy, dx = int(ty[k]), int(tx[k])
        for i, j in ((0, 0), (13, 7), (27, 27), (5, 20)):
            si, sj = i + dy, j + dx
            want = x[k, 0, si, sj] if 0 <= si < side and 0 <= sj < side else 0.0
            assert out[k, 0, i, j] == want, (k, i, j)
    assert len(set(zip(ty.flatten().tolist(), tx.flatten().tolist()))) > 1  # per image, not per batch


def test_cutout_zeroes_one_clipped_square_of_half_the_side():
    x = torch.ones(64, 1, 28, 28)
    out = lit.cutout(x, _gen(5))
    for k in range(64):
        holes = (out[k, 0] == 0).nonzero()
        rows, cols = holes[:, 0].unique(), holes[:, 1].unique()
        assert len(holes) == len(rows) * len(cols)  # one rectangle
        assert 7 <= len(rows) <= 14 and 7 <= len(cols) <= 14  # 14 = ⌊28 · 0.5 + 0.5⌋, clipped to 7 at worst
        assert (rows.diff() == 1).all() and (cols.diff() == 1).all()
    assert (out == 1).sum() + (out == 0).sum() == out.numel()


def test_flip_mirrors_some_images_and_keeps_the_rest():
    x = torch.randn(64, 1, 5, 5)
    out = lit.flip(x, _gen(0))
    mirrored = [torch.equal(out[k], x[k].flip(-1)) for k in range(64)]
    kept = [torch.equal(out[k], x[k]) for k in range(64)]
    assert all(m or s for m, s in zip(mirrored, kept)) and 10 < sum(mirrored) < 54


def test_warp_convention_scale_and_rotate_fix_the_centre():
    x = torch.randn(4, 1, 9, 9)
    quarter = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]).repeat(4, 1, 1)  # rotate's θ at +90°
    assert torch.allclose(lit._warp(x, quarter), torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).repeat(4, 1, 1)
    assert torch.allclose(lit._warp(x, identity), x, atol=1e-5)
    for op in (lit.scale, lit.rotate):  # the centre of an odd image is the fixed point of both
        out = op(x, _gen(2))
        assert torch.allclose(out[:, :, 4, 4], x[:, :, 4, 4], atol=1e-5) and not torch.allclose(out, x)
    ones = torch.ones(32, 1, 9, 9)
    shrunk = lit.scale(ones, _gen(0))
    assert shrunk.min() >= 0 and shrunk.max() <= 1 + 1e-6 and (shrunk[:, 0, 0, 0] < 1).any()  # zero fill


def test_dsa_picks_one_group_per_batch_deterministically():
    x = torch.randn(6, 1, 28, 28)
    groups = set()
    for seed in range(40):
        a, group = lit.dsa(x, _gen(seed))
        b, again = lit.dsa(x, _gen(seed))
        assert group == again and torch.equal(a, b) and a.shape == x.shape and torch.isfinite(a).all()
        groups.add(group)
    assert groups == set(lit.DSA_GROUPS)
    only_flip, group = lit.dsa(x, _gen(0), strategy="flip")
    assert group == "flip"
    with pytest.raises(ConfigError, match="unknown DSA group"):
        lit.dsa(x, _gen(0), strategy="color_blur")


# ---------------------------------------------------------------- student, normalisation

def test_literature_convnet_matches_the_dc_code_for_28px_grey():
    net = lit.build_literature_convnet(10, (1, 28, 28), None, seed=0)
    assert net.body[0].padding == (3, 3) and net.body[4].padding == (1, 1)
    assert net.features(torch.zeros(2, 1, 28, 28)).shape == (2, 128 * 4 * 4)
    # conv 1·128·9+128, 2× conv 128·128·9+128, 3 instance norms 2·128, linear 2048·10+10
    assert sum(p.numel() for p in net.parameters()) == 1280 + 2 * 147584 + 3 * 256 + 20490
    same = lit.build_literature_convnet(10, (1, 28, 28), None, seed=0)
    other = lit.build_literature_convnet(10, (1, 28, 28), None, seed=1)
    assert torch.equal(net.head.weight, same.head.weight) and not torch.equal(net.head.weight, other.head.weight)
    assert lit.LiteratureConvNet(10, (3, 32, 32)).features(torch.zeros(1, 3, 32, 32)).shape == (1, 2048)


def test_normalisation_uses_pixel_units():
    images = torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2).contiguous()  # pixels 0 and 1
    mean, std = lit.channel_stats(images)
    assert mean == pytest.approx((0.5,)) and std == pytest.approx((float(torch.tensor([0.0] * 4 + [1.0] * 4).std()),))
    z = lit.normalise(images, ((0.25,), (0.5,)))
    assert torch.allclose(z[0], torch.full((1, 2, 2), -0.5)) and torch.allclose(z[1], torch.full((1, 2, 2), 1.5))
    with pytest.raises(ConfigError, match="per channel"):
        lit.normalise(images, ((0.2, 0.3), (0.5, 0.5)))


# ---------------------------------------------------------------- the preset and its training loop

def test_a_full_preset_defaults_and_departures():
    full = StudentSettings(protocol="A-full")
    assert full.n_students() == 5 and full.batch() == 256 and full.epochs_for(10, 10) == 1000
    assert full.departures() == {}
    assert StudentSettings().n_students() == 3 and StudentSettings().departures() == {}
    small = StudentSettings(protocol="A-full", width=8, epochs=2, students=2)
    assert small.departures() == {"width": 8, "epochs": 2, "students": 2}
    with pytest.raises(PracticumError, match="hard-label"):
        StudentSettings.build({"protocol": "A-full", "labels": "soft"})
    with pytest.raises(PracticumError):
        StudentSettings.build({"protocol": "C"})


def _toy(n_per_class=6, side=12, seed=0):
    from practicum.data import Dataset

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(2), n_per_class)
    images = np.where(labels[:, None, None, None] == 0, -0.6, 0.6) + 0.2 * rng.standard_normal(
        (2 * n_per_class, 1, side, side))
    return Dataset(torch.as_tensor(images, dtype=torch.float32).clamp(-1, 1), torch.as_tensor(labels),
                   np.array([f"x{i}" for i in range(2 * n_per_class)]), ("a", "b"))


def test_a_full_lr_drops_tenfold_at_half_of_the_steps(monkeypatch):
    seen = []
    original = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    train = _toy(n_per_class=150)  # 300 images at batch 256: 2 steps an epoch
    settings = StudentSettings(protocol="A-full", width=4, epochs=4, students=1)
    result = train_student(train, _toy(4, seed=1), settings, seed=0)
    assert result.steps == 8 and len(seen) == 8
    assert seen[:4] == [pytest.approx(0.01)] * 4 and seen[4:] == [pytest.approx(0.001)] * 4


def test_a_full_trains_five_students_resumes_by_student_and_is_deterministic():
    train, test = _toy(), _toy(4, seed=1)
    settings = StudentSettings(protocol="A-full", width=4, epochs=3)
    finished = {}
    result = train_student(train, test, settings, seed=2, on_student=lambda k, r: finished.__setitem__(k, r.to_dict()))
    assert sorted(finished) == [0, 1, 2, 3, 4] and len(result.per_student) == 5
    assert result.last_accuracy == pytest.approx(np.mean(result.per_student)) and result.curve[0][0] == 3
    assert len({tuple(map(float, lit.build_literature_convnet(2, (1, 12, 12), 4, 2000 + k).head.weight.detach().flatten()))
                for k in range(5)}) == 5  # a different initialisation per student
    again = []
    resumed = train_student(train, test, settings, seed=2, done={k: finished[k] for k in range(3)},
                            on_student=lambda k, r: again.append(k))
    assert again == [3, 4] and resumed.to_dict() == result.to_dict()


def test_a_full_normalises_with_the_given_stats_and_augments_in_those_units(monkeypatch):
    import practicum.distill.protocol as protocol

    seen = []
    original = protocol.accuracy
    monkeypatch.setattr(protocol, "accuracy", lambda model, data, size=None: seen.append(data.images) or
                        original(model, data, size))
    train, test = _toy(), _toy(4, seed=1)
    settings = StudentSettings(protocol="A-full", width=4, epochs=1, students=1)
    train_student(train, test, settings, seed=0, norm=((0.25,), (0.5,)))
    assert torch.allclose(seen[0], ((test.images + 1) / 2 - 0.25) / 0.5)


# ---------------------------------------------------------------- through `practicum distill`

def test_distill_cli_runs_a_full_with_departures_and_per_student_files(tmp_path, capsys):
    import yaml

    from practicum.cli import main
    from tiny_models import save_tiny_pixel_unet

    model = save_tiny_pixel_unet(tmp_path / "unet")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": "digits", "model": str(model), "ipc": 2, "seeds": [0], "steps": 4,
                                      "methods": ["random-real", "mgd3"], "metric_spaces": ["cosine"],
                                      "student": {"width": 4, "epochs": 2}}))

    def cli(*args):
        try:
            main(list(args))
        except SystemExit as exc:
            return exc.code
        return 0

    out = tmp_path / "run"
    assert cli("distill", "--config", str(config), "--out", str(out), "--protocol", "A-full") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "A-full" and summary["students_per_set"] == 5
    assert summary["departures"] == {"width": 4, "epochs": 2}
    assert "departs from the literature" in capsys.readouterr().out
    students = json.loads((out / "results" / "mgd3-seed0.students.json").read_text())
    assert sorted(students) == ["0", "1", "2", "3", "4"]
    record = json.loads((out / "results" / "mgd3-seed0.json").read_text())
    assert record["per_student"] == [students[k]["last_accuracy"] for k in sorted(students)]
    norm = json.loads((out / "normalisation.json").read_text())
    assert len(norm["mean"]) == 1 and norm["std"][0] > 0
    assert cli("distill", "--config", str(config), "--out", str(tmp_path / "bad"), "--protocol", "C") == 2
    assert "protocol" in capsys.readouterr().err


def _bench():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "distill_fashion.py"
    spec = importlib.util.spec_from_file_location("distill_fashion_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_benchmark_a_full_cells_keep_the_preset_unless_a_budget_flag_is_given():
    from argparse import Namespace

    bench = _bench()
    bare = Namespace(width=None, epochs=None, students=None)
    full = bench.student_values(bare, bench.full_student(bare))
    assert full == {"protocol": "A-full"}
    assert StudentSettings.build(full).departures() == {}
    tiny = Namespace(width=4, epochs=1, students=5)
    assert StudentSettings.build(bench.student_values(tiny, bench.full_student(tiny))).departures() == {
        "width": 4, "epochs": 1}
    assert bench.student_values(bare, {"students": 1}) == {"width": 128, "epochs": 300, "students": 1}


def test_benchmark_a_full_table_is_rebuilt_from_finished_cells(tmp_path):
    from practicum.distill.protocol import t_interval

    bench = _bench()
    mgd3, unguided = [0.80, 0.82, 0.79, 0.85, 0.81], [0.75, 0.78, 0.77, 0.79, 0.74]
    for method, accs in (("mgd3", mgd3), ("unguided", unguided)):
        for seed, acc in enumerate(accs):
            cell = tmp_path / "ipc10" / f"{method}-seed{seed}"
            (cell / "results").mkdir(parents=True)
            (cell / "results" / f"{method}-seed{seed}.json").write_text(json.dumps(
                {"last_accuracy": acc, "per_student": [acc] * 5, "train_seconds": 10.0}))
            (cell / "summary.json").write_text(json.dumps({"departures": {"epochs": 1}}))
    partial = tmp_path / "ipc10" / "herding-seed0" / "results"
    partial.mkdir(parents=True)
    (partial / "herding-seed0.students.json").write_text(json.dumps({"0": {}, "1": {}}))
    full = bench.collect_full(tmp_path, [10], ["mgd3", "unguided", "herding"], list(range(5)))
    entry = full["ipc"]["10"]
    assert entry["methods"]["mgd3"]["mean"] == pytest.approx(np.mean(mgd3)) and "herding" not in entry["methods"]
    assert entry["unfinished"] == {"herding-seed0": "2 students done"} and entry["departures"] == {"epochs": 1}
    pair = entry["paired"]["mgd3 - unguided"]
    diffs = [a - b for a, b in zip(mgd3, unguided)]
    assert pair["mean"] == pytest.approx(np.mean(diffs)) and pair["ci"] == pytest.approx(t_interval(diffs))
    assert pair["ci_note"] is None and pair["level"] == 0.95 and pair["seeds"] == list(range(5))
    text = bench.full_table(full)
    assert "| DM (literature) | 83.5 |" in text and "Zhao & Bilen, WACV 2023" in text
    assert "| mgd3 (practicum, A-full) | 81.4 ± 2.3 (5) |" in text and "IPC 10, mgd3 - unguided: +4.8 points" in text


def test_benchmark_tables_read_recorded_results_written_with_the_old_interval_keys():
    bench = _bench()
    results = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
    recorded = json.loads((results / "distill_fashion.json").read_text())
    pair = recorded["protocol_A"]["10"]["paired"]["mgd3 - unguided"]
    assert "ci95" in pair and "ci" not in pair  # written before the stats keys
    lo, hi = pair["ci95"]
    assert f"- IPC 10, paired mgd3 - unguided: {100 * pair['mean']:+.1f} points; 95% t interval " \
           f"[{100 * lo:+.1f}, {100 * hi:+.1f}]" in bench.table(recorded)
    few = json.loads((results / "distill_fashion_ipc50.json").read_text())
    why = few["protocol_A"]["50"]["paired"]["mgd3 - unguided"]["why_no_interval"]
    assert f"no interval ({why})" in bench.table(few)
