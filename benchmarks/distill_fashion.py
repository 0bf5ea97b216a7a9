"""MGD³ on Fashion-MNIST against the dataset-distillation literature (issue 13).

Phases, each a resumable `practicum distill` run directory under --out (rerun to continue):

1. **tune** (the tune split only; test untouched): `mgd3` over a λ grid at t_stop = 25, then a
   t_stop grid at the best λ, then a CFG grid at the best (λ, t_stop); `unguided` at each CFG as
   its reference. Kept: the best mean tune accuracy. Prints the tuning table.
2. **test, protocol A** (ConvNet-3, DSA, final epoch, `--students` networks per set): every
   method at each `--ipc`, over `--seeds` generation seeds, with the tuned settings. Paired
   MGD³ − unguided per seed with a t interval (≥ 5 seeds).
   At IPC 10, unguided is also run at its own best CFG on tune (`--unguided-cfg`) and MGD³ is paired
   against it, so guidance is not credited for a CFG scale that only suits MGD³.
3. **ranking check**: IPC 10 again with another student width/epochs (`--check-width`,
   `--check-epochs`, `--check-seeds`; e.g. larger than a CPU-reduced phase 2) on the same sets (the same
   seeds give the same noise); the method ranking over the check's seeds is compared with phase 2's.
4. **protocol B** (MGD³'s own: CutMix, best and last) at IPC 10 (`--protocol-b`).

**--protocol A-full** (issue 27) replaces phases 2–4 with the literature's own evaluation
(`practicum.distill.literature`: normalised inputs, the DC code's ConvNet-3 at width 128, DSA,
1000 epochs, ≥ 5 students per set). Cells are one run directory per (IPC, method, seed) under
--out/A-full/, each resumable student by student; finished cells are skipped; the JSON report
is rebuilt from every finished cell on disk after each cell, so two processes (at most) may work
on the same --out (a cell another process holds is skipped). `--full-data` adds the sanity row of
a student trained on the whole train split (`--full-data-epochs`, `--full-data-students`).
Random real at IPC 10 is the random-real row of the IPC 10 cells. Settings (λ, t_stop, CFG) come
from the tune split: phase 1 here, or --lam/--t-stop/--cfg from an earlier tune run.

    python benchmarks/distill_fashion.py --protocol A-full --ipc 10 --methods random-real --full-data \
        --lam 0.3 --t-stop 14 --cfg 4 --steps 20                                        # sanity rows

Budget knobs: --ipc, --seeds, --students, --epochs, --width, --tune-seeds. The literature's
protocol is width 128, 1000 epochs (DSA/DM), 20 students; every departure is printed and stored.

    python benchmarks/distill_fashion.py --ipc 10 --seeds 5 --students 2 --epochs 300     # CPU: hours
    python benchmarks/distill_fashion.py --device cuda --ipc 10,1,50 --seeds 5 --students 3

Writes benchmarks/results/distill_fashion.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from practicum.data import atomic_write_json  # noqa: E402
from practicum.distill.methods import METHODS  # noqa: E402
from practicum.distill.pipeline import DistillSettings, paired_interval, print_summary, run_distill  # noqa: E402
from practicum.stats import paired_difference  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "distill_fashion.json"
LITERATURE = {  # ConvNet-3, Zhao et al.'s protocol; IPC 1 / 10 / 50 (shared/data/README.md)
    "random real": (51.4, 73.8, 82.5), "DC": (70.5, 82.3, 83.6), "DSA": (70.6, 84.6, 88.7),
    "DM": (70.7, 83.5, 88.1), "MTT": (75.1, 87.2, 88.3)}
FULL_DATA = 93.5
LITERATURE_SOURCES = {
    "random real": "DC/DSA readme (VICO-UoE/DatasetCondensation), ConvNet-3",
    "DC": "Zhao, Mopuri & Bilen, ICLR 2021; the DC/DSA readme", "DSA": "Zhao & Bilen, ICML 2021; the DC/DSA readme",
    "DM": "Zhao & Bilen, WACV 2023, as later papers cite it (unchecked)",
    "MTT": "Cazenavette et al., CVPR 2022, as later papers cite it (unchecked)",
    "whole train set": "the DC/DM tables (60k images; practicum's train split is 50k)"}
RESULTS_FULL = RESULTS.with_name("distill_fashion_full.json")
FULL_METHODS = ("mgd3", "unguided", "random-real", "herding", "kmeans-nearest-real")


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown methods {unknown}; use some of {', '.join(METHODS)}")
    return names


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _seeds(text: str) -> list[int]:
    values = _ints(text)
    return list(range(values[0])) if len(values) == 1 else values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-fashion"))
    parser.add_argument("--model", default="builtin", help="builtin (the Fashion generator) or a model folder")
    parser.add_argument("--ipc", type=_ints, default=[10])
    parser.add_argument("--seeds", type=_seeds, default=list(range(5)), help="a count (5) or a list (0,1,2)")
    parser.add_argument("--students", type=int, default=None, help="A: 2; A-full: 5 (fewer is a recorded departure)")
    parser.add_argument("--epochs", type=int, default=None, help="A: 300; A-full: 1000 (the literature)")
    parser.add_argument("--width", type=int, default=None, help="student width (default 128)")
    parser.add_argument("--protocol", choices=["A", "A-full"], default="A",
                        help="A: phases 2-4 at the budget above; A-full: the literature's protocol, cell by cell")
    parser.add_argument("--methods", type=_names, default=list(FULL_METHODS), help="A-full: methods to run")
    parser.add_argument("--full-data", action="store_true", help="A-full: also the whole-train-split sanity row")
    parser.add_argument("--full-data-epochs", type=int, default=5, help="A-full whole-train-split epochs")
    parser.add_argument("--full-data-students", type=int, default=1, help="A-full whole-train-split students")
    parser.add_argument("--tune-seeds", type=_seeds, default=[100, 101])
    parser.add_argument("--tune-epochs", type=int, default=None, help="default: --epochs")
    parser.add_argument("--lams", type=_floats, default=[0.03, 0.1, 0.3, 1.0])
    parser.add_argument("--t-stops", type=_ints, default=None, help="default: 0.2, 0.5, 0.7 of --steps (paper grid 10/25/35 of 50)")
    parser.add_argument("--cfgs", type=_floats, default=[1.0, 2.0, 4.0])
    parser.add_argument("--lam", type=float, default=None, help="skip tuning with --t-stop and --cfg")
    parser.add_argument("--t-stop", type=int, default=None)
    parser.add_argument("--cfg", type=float, default=None)
    parser.add_argument("--check-width", type=int, default=32, help="ranking check: the other student width")
    parser.add_argument("--check-epochs", type=int, default=100, help="ranking check: the other epoch count")
    parser.add_argument("--check-seeds", type=_seeds, default=None, help="ranking check seeds (default: --seeds)")
    parser.add_argument("--unguided-cfg", type=float, default=None,
                        help="also run unguided at its own CFG (default: its best on tune, when tuned here)")
    parser.add_argument("--no-ranking-check", action="store_true")
    parser.add_argument("--protocol-b", action="store_true", help="also run protocol B at IPC 10")
    parser.add_argument("--b-epochs", type=int, default=300, help="protocol B epochs (the rule: 2000 at IPC 10)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=50, help="sampling steps (the t_stop grid scales with it)")
    parser.add_argument("--tsne-real", type=int, default=300, help="real rows per class in the joint t-SNE")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON report goes")
    args = parser.parse_args()
    if args.protocol == "A-full":
        if args.results == RESULTS:
            args.results = RESULTS_FULL
        check_full_args(args)
    else:  # protocol A's budget defaults (issue 13)
        args.students, args.epochs, args.width = args.students or 2, args.epochs or 300, args.width or 128
    torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
    started = time.time()
    report: dict = {"machine": "see docs/benchmarks.md", "date": time.strftime("%Y-%m-%d"),
                    "command": "python " + " ".join(sys.argv), "python": platform.python_version(),
                    "device": args.device, "literature": LITERATURE, "full_data": FULL_DATA,
                    "budget": {"width": args.width, "epochs_A": args.epochs, "students": args.students,
                               "seeds": args.seeds, "protocol": args.protocol,
                               "literature": "width 128, 1000 epochs (DSA/DM), 20 students"}}

    def settings(**values) -> DistillSettings:
        student = student_values(args, values.pop("student", {}))
        base = {"model": args.model, "data": "fashion", "device": args.device, "tsne_real_per_class": args.tsne_real,
                "steps": args.steps}
        return DistillSettings.model_validate({**base, **values, "student": student})

    def save() -> None:
        report["minutes"] = (time.time() - started) / 60
        atomic_write_json(args.results, report)

    # ---- phase 1: tune λ, then t_stop, then CFG on the tune split (IPC 10)
    modes_file = None
    lam, t_stop, cfg = args.lam, args.t_stop, args.cfg
    tuning: list[dict] = []
    if lam is None or t_stop is None or cfg is None:
        tune_epochs = args.tune_epochs or (300 if args.protocol == "A-full" else args.epochs)  # protocol A on tune
        tune_student = {"students": 1, "epochs": tune_epochs}

        def tune(method: str, lam_: float, t_stop_: int, cfg_: float) -> float:
            nonlocal modes_file
            name = f"tune-{method}-lam{lam_}-ts{t_stop_}-cfg{cfg_}"
            s = settings(ipc=10, methods=[method], seeds=args.tune_seeds, lam=lam_, t_stop=t_stop_, cfg_scale=cfg_,
                         eval_split="tune", metric_spaces=["cosine"], modes_file=modes_file, student=tune_student)
            summary = run_distill(s, args.out / name, resume=(args.out / name / "run.json").exists())
            if modes_file is None:
                modes_file = str(args.out / name / "modes" / "modes.safetensors")
            m = summary["methods"][method]
            row = {"method": method, "lam": lam_, "t_stop": t_stop_, "cfg": cfg_, "tune_accuracy": m["last_accuracy_mean"],
                   "std": m["last_accuracy_std"], "diversity_cosine": m["diversity_cosine"],
                   "representativeness_cosine": m["representativeness_cosine"]}
            if row not in tuning:
                tuning.append(row)
            print(f"  tune {method:<9} λ={lam_:<5} t_stop={t_stop_:<3} cfg={cfg_:<4} → {100 * row['tune_accuracy']:.1f}",
                  flush=True)
            return row["tune_accuracy"]

        cfg0 = 2.0 if cfg is None else cfg  # the generator's recommended scale
        ts0 = args.steps // 2 if t_stop is None else t_stop  # the paper's 25 of 50 steps, scaled
        tune("unguided", 0.0, ts0, cfg0)
        if lam is None:
            lam = max(args.lams, key=lambda v: tune("mgd3", v, ts0, cfg0))
        if t_stop is None:
            t_stops = args.t_stops or [round(f * args.steps) for f in (0.2, 0.5, 0.7)]
            t_stop = max(t_stops, key=lambda v: tune("mgd3", lam, v, cfg0))
        if cfg is None:
            for c in args.cfgs:
                tune("unguided", 0.0, t_stop, c)
            cfg = max(args.cfgs, key=lambda v: tune("mgd3", lam, t_stop, v))
    report["tuning"] = tuning
    report["tuned"] = {"lam": lam, "t_stop": t_stop, "cfg_scale": cfg, "tuned": bool(tuning)}
    origin = "tuned on the tune split" if tuning else "given on the command line (not tuned)"
    print(f"{origin}: λ={lam}, t_stop={t_stop}, cfg={cfg}", flush=True)
    save()
    if args.protocol == "A-full":
        full_protocol(args, settings, lam, t_stop, cfg, report, save)
        print(full_table(report["A-full"]))
        print(json.dumps({"results": str(args.results)}))
        return

    # ---- phase 2: protocol A on test, every method, each IPC
    report["protocol_A"] = {}
    for ipc in args.ipc:
        s = settings(ipc=ipc, methods=list(METHODS), seeds=args.seeds, lam=lam, t_stop=t_stop, cfg_scale=cfg)
        out = args.out / f"A-ipc{ipc}"
        summary = run_distill(s, out, resume=(out / "run.json").exists())
        print_summary(summary)
        report["protocol_A"][str(ipc)] = summary
        save()
        if ipc == 10:
            own_cfg = args.unguided_cfg if args.unguided_cfg is not None else max(
                (r for r in tuning if r["method"] == "unguided"), key=lambda r: r["tune_accuracy"],
                default={"cfg": cfg})["cfg"]
            if own_cfg != cfg:
                # MGD³ against unguided at unguided's own best CFG: guidance is not credited for a CFG
                # scale that suits MGD³ and hurts unguided sampling (same seeds, hence the same noise)
                s_own = settings(ipc=10, methods=["unguided"], seeds=args.seeds, lam=lam, t_stop=t_stop,
                                 cfg_scale=own_cfg, metric_spaces=["cosine"])
                own_out = args.out / f"A-ipc10-unguided-cfg{own_cfg}"
                own = run_distill(s_own, own_out, resume=(own_out / "run.json").exists())
                report["unguided_own_cfg"] = {"cfg": own_cfg, "summary": own["methods"]["unguided"],
                                              "mgd3 - unguided(own cfg)": _paired(
                                                  summary["methods"]["mgd3"], own["methods"]["unguided"])}
                save()
        if ipc == 10 and not args.no_ranking_check:
            # ---- phase 3: the same recipe at another student budget; does the ranking change?
            check_seeds = args.check_seeds or args.seeds
            check = settings(ipc=10, methods=list(METHODS), seeds=check_seeds, lam=lam, t_stop=t_stop,
                             cfg_scale=cfg, metric_spaces=["cosine"],
                             student={"width": args.check_width, "epochs": args.check_epochs})
            check_out = args.out / f"A-ipc10-w{args.check_width}-e{args.check_epochs}"
            check_summary = run_distill(check, check_out, resume=(check_out / "run.json").exists())

            def ranking(methods: dict) -> list[str]:  # by mean final accuracy over the check's seeds
                def mean(m: str) -> float:
                    values = [r["last_accuracy"] for r in methods[m]["per_seed"] if r["seed"] in check_seeds]
                    return sum(values) / len(values)
                return sorted(methods, key=lambda m: -mean(m))

            main_rank = ranking(summary["methods"])
            check_rank = ranking(check_summary["methods"])
            report["ranking_check"] = {
                "main": {"width": args.width, "epochs": args.epochs, "seeds": args.seeds, "ranking": main_rank},
                "check": {"width": args.check_width, "epochs": args.check_epochs, "seeds": check_seeds,
                          "ranking": check_rank,
                          "accuracy": {m: v["last_accuracy_mean"] for m, v in check_summary["methods"].items()},
                          "paired": check_summary.get("paired", {})},
                "same_order": main_rank == check_rank,
                "kendall_tau": _kendall(main_rank, check_rank)}
            print(f"ranking at width {args.width}, {args.epochs} epochs: {main_rank}\n"
                  f"ranking at width {args.check_width}, {args.check_epochs} epochs: {check_rank}", flush=True)
            save()

    # ---- phase 4: protocol B at IPC 10
    if args.protocol_b:
        s = settings(ipc=10, methods=list(METHODS), seeds=args.seeds, lam=lam, t_stop=t_stop, cfg_scale=cfg,
                     metric_spaces=["cosine"],
                     student={"protocol": "B", "epochs": args.b_epochs, "students": 1, "eval_points": 10})
        out = args.out / "B-ipc10"
        summary = run_distill(s, out, resume=(out / "run.json").exists())
        print_summary(summary)
        report["protocol_B"] = {"10": summary}
        save()
    print(table(report))
    save()
    print(json.dumps({"results": str(args.results)}))


# ---------------------------------------------------------------- protocol A-full (issue 27)

def check_full_args(args) -> None:
    """Refuse A-full settings that would make the table meaningless (one error, what to change)."""
    from practicum.errors import ConfigError

    if len(args.seeds) < 2:
        raise ConfigError(f"--seeds {args.seeds}: A-full needs at least 2 seeds for a std (5 for an interval)",
                          "give --seeds 5 (the issue's minimum) or a list of at least two")
    if args.ipc and min(args.ipc) < 1:
        raise ConfigError(f"--ipc {args.ipc} must be positive", "e.g. --ipc 1,10,50")
    for flag in ("full_data_epochs", "full_data_students"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be at least 1")


def student_values(args, extra: dict) -> dict:
    """A cell's student settings: A-full's preset untouched (only flags given depart from it), else protocol A's
    budget (width 128, 300 epochs, 2 students unless given) under `extra`."""
    if extra.get("protocol") == "A-full":
        return dict(extra)
    return {"width": args.width or 128, "epochs": args.epochs or 300, "students": args.students or 2, **extra}


def full_student(args) -> dict:
    """The A-full student settings: the preset, plus any budget flag given (each a recorded departure)."""
    given = {"width": args.width, "epochs": args.epochs, "students": args.students}
    return {"protocol": "A-full", **{k: v for k, v in given.items() if v is not None}}


def full_protocol(args, settings, lam, t_stop, cfg, report: dict, save) -> None:
    """Every (IPC, method, seed) cell at protocol A-full, then the whole-train-split row if asked."""
    from practicum.errors import RunError

    root = args.out / "A-full"
    student = full_student(args)

    def refresh() -> None:
        report["A-full"] = collect_full(root, args.ipc, args.methods, args.seeds)
        save()

    refresh()  # what earlier (possibly killed) invocations finished

    for ipc in args.ipc:
        base = settings(ipc=ipc, methods=["mgd3"], seeds=[0], lam=lam, t_stop=t_stop, cfg_scale=cfg,
                        metric_spaces=["cosine"], student=student)
        modes = modes_file(base, root / f"ipc{ipc}" / "modes")
        for seed in args.seeds:
            for method in args.methods:
                cell = root / f"ipc{ipc}" / f"{method}-seed{seed}"
                if _finished(cell):
                    continue
                s = settings(ipc=ipc, methods=[method], seeds=[seed], lam=lam, t_stop=t_stop, cfg_scale=cfg,
                             metric_spaces=["cosine"], modes_file=modes, student=student)
                started = time.process_time()
                try:
                    run_distill(s, cell, resume=(cell / "run.json").exists())
                except RunError as exc:  # another process holds this cell: leave it to that one
                    print(f"  skipped {cell}: {exc}", flush=True)
                    continue
                print(f"  A-full IPC {ipc} {method} seed {seed}: {time.process_time() - started:.0f} CPU-s",
                      flush=True)
                refresh()
    if args.full_data:
        full_data_row(args, root / "full-data", student)
    refresh()


def _finished(cell: Path) -> bool:
    try:
        return json.loads((cell / "run.json").read_text()).get("status") == "finished"
    except (OSError, ValueError):
        return False


def modes_file(s: DistillSettings, folder: Path) -> str:
    """The IPC's k-means modes, computed once (its own run folder) and shared by every cell of that IPC."""
    from practicum.data import RunDir
    from practicum.distill.pipeline import discover, load_splits, open_model

    path = folder / "modes" / "modes.safetensors"
    if _finished(folder) and path.exists():
        return str(path)
    s = s.resolved()
    train, _ = load_splits(s)
    den = open_model(s, train).denoiser
    with RunDir.create(folder, s.to_yaml(), seed=0, resume=(folder / "run.json").exists()) as run:
        discover(s, den, train, run)
        run.finish()
    return str(path)


def full_data_row(args, folder: Path, student: dict) -> None:
    """Sanity row: A-full students trained on the whole train split (50k), tested once on test."""
    from practicum.data import RunDir, load_source
    from practicum.distill.literature import channel_stats
    from practicum.distill.protocol import StudentSettings, train_student

    if _finished(folder):
        return
    settings = StudentSettings.build({**student, "epochs": args.full_data_epochs, "students": args.full_data_students,
                                      "device": args.device})
    train, test = load_source("fashion", "train"), load_source("fashion", "test")
    with RunDir.create(folder, settings.to_yaml(), seed=0, resume=(folder / "run.json").exists()) as run:
        done = {int(k): v for k, v in run.read_json("students.json", default={}).items()}

        def keep(k: int, result) -> None:
            done[k] = result.to_dict()
            run.write_json("students.json", {str(i): v for i, v in sorted(done.items())})

        started = time.process_time()
        result = train_student(train, test, settings, seed=0, norm=channel_stats(train.images), done=done,
                               on_student=keep)
        run.write_json("summary.json", {**result.to_dict(), "settings": settings.model_dump(mode="json"),
                                        "departures": settings.departures(), "train_images": len(train),
                                        "cpu_seconds_this_call": time.process_time() - started})
        run.finish()
    print(f"  A-full whole train split: {100 * result.last_accuracy:.1f} %", flush=True)


def collect_full(root: Path, ipcs: list[int], methods: list[str], seeds: list[int]) -> dict:
    """The A-full table from every finished cell on disk (and how far unfinished cells are)."""
    from practicum.distill.protocol import summarise, t_interval

    out: dict = {"literature": LITERATURE, "sources": LITERATURE_SOURCES, "full_data_literature": FULL_DATA,
                 "ipc": {}}
    for ipc in ipcs:
        rows: dict = {}
        departures, progress = None, {}
        for method in methods:
            per_seed = {}
            for seed in seeds:
                cell = root / f"ipc{ipc}" / f"{method}-seed{seed}"
                record = _read(cell / "results" / f"{method}-seed{seed}.json")
                if record is not None:
                    per_seed[seed] = record
                    continue
                partial = _read(cell / "results" / f"{method}-seed{seed}.students.json")
                if partial:
                    progress[f"{method}-seed{seed}"] = f"{len(partial)} students done"
            if departures is None:
                for seed in per_seed:
                    departures = (_read(root / f"ipc{ipc}" / f"{method}-seed{seed}" / "summary.json") or {}).get(
                        "departures")
                    break
            if not per_seed:
                continue
            accs = [per_seed[s]["last_accuracy"] for s in sorted(per_seed)]
            mean, std = summarise(accs)
            rows[method] = {"seeds": sorted(per_seed), "per_seed": accs, "mean": mean, "std": std,
                            "ci95": t_interval(accs) if len(accs) >= 2 else None,
                            "per_student": {s: per_seed[s]["per_student"] for s in sorted(per_seed)},
                            "train_wall_seconds_per_set": sum(per_seed[s]["train_seconds"] for s in per_seed) / len(per_seed)}
        paired = {}
        if "mgd3" in rows:
            for other in rows:
                if other != "mgd3" and set(rows[other]["seeds"]) & set(rows["mgd3"]["seeds"]):
                    paired[f"mgd3 - {other}"] = _paired(
                        {"per_seed": [{"seed": s, "last_accuracy": a} for s, a in zip(rows["mgd3"]["seeds"],
                                                                                       rows["mgd3"]["per_seed"])]},
                        {"per_seed": [{"seed": s, "last_accuracy": a} for s, a in zip(rows[other]["seeds"],
                                                                                       rows[other]["per_seed"])]})
        out["ipc"][str(ipc)] = {"methods": rows, "paired": paired, "departures": departures, "unfinished": progress}
    full = _read(root / "full-data" / "summary.json")
    if full is not None:
        out["full_data"] = {"last_accuracy": full["last_accuracy"], "per_student": full["per_student"],
                            "epochs": full["epochs"], "departures": full["departures"],
                            "train_images": full["train_images"]}
    return out


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _method_table(ipcs: list[int], methods, cell, label: str, with_source: bool) -> list[str]:
    """The markdown rows shared by both protocols' tables: the literature's rows (a '-' where it has no
    figure for an IPC), then one row per practicum method with `cell(method, ipc)` per column."""
    col = {1: 0, 10: 1, 50: 2}
    tail = (lambda source: f" | {source} |") if with_source else (lambda source: " |")
    lines = ["| method | " + " | ".join(f"IPC {i}" for i in ipcs) + (" | source |" if with_source else " |"),
             "|---|" + "---|" * (len(ipcs) + with_source)]
    for name, values in LITERATURE.items():
        cells = [f"{values[col[i]]}" if i in col else "-" for i in ipcs]
        lines.append(f"| {name} (literature) | " + " | ".join(cells) + tail(LITERATURE_SOURCES[name]))
    for method in methods:
        lines.append(f"| {method} ({label}) | " + " | ".join(cell(method, i) for i in ipcs) + tail("this run"))
    return lines


def full_table(full: dict) -> str:
    """Markdown: the literature's rows (with sources) beside practicum's at protocol A-full."""
    ipcs = sorted(int(k) for k in full["ipc"])

    def cell(method: str, ipc: int) -> str:
        m = full["ipc"][str(ipc)]["methods"].get(method)
        return "-" if m is None else f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f} ({len(m['seeds'])})"

    lines = _method_table(ipcs, FULL_METHODS, cell, "practicum, A-full", with_source=True)
    lines.append("")
    whole = f"- Whole train set: literature {FULL_DATA} ({LITERATURE_SOURCES['whole train set']})"
    if "full_data" in full:
        f = full["full_data"]
        whole += (f"; practicum A-full on {f['train_images']} images, {f['epochs']} epochs: "
                  f"{100 * f['last_accuracy']:.1f} % (departures {f['departures']})")
    lines.append(whole)
    for i in ipcs:
        entry = full["ipc"][str(i)]
        if entry.get("departures"):
            lines.append(f"- IPC {i}: departs from the literature's protocol in {entry['departures']}")
        for pair, d in entry["paired"].items():
            ci, why = paired_interval(d)
            tail = f"95% paired t interval [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else \
                f"no interval ({why or '< 5 seeds'})"
            lines.append(f"- IPC {i}, {pair}: {100 * d['mean']:+.1f} points over {len(d['per_seed'])} seeds; {tail}")
    return "\n".join(lines)


def _paired(a: dict, b: dict, key: str = "last_accuracy") -> dict:
    """Per-seed differences a − b of two methods' records (`practicum.stats.paired_difference`)."""
    pa = {r["seed"]: r[key] for r in sorted(a["per_seed"], key=lambda r: r["seed"])}
    pb = {r["seed"]: r[key] for r in b["per_seed"]}
    d = paired_difference(pa, pb)
    return {k: d[k] for k in ("seeds", "per_seed", "mean", "ci", "ci_note", "level")}


def _kendall(a: list[str], b: list[str]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau([a.index(m) for m in a], [b.index(m) for m in a]).statistic)


def table(report: dict) -> str:
    """The markdown table for docs/benchmarks.md: literature rows beside practicum's (protocol A)."""
    ipcs = sorted(int(k) for k in report.get("protocol_A", {}))

    def cell(method: str, ipc: int) -> str:
        m = report["protocol_A"][str(ipc)]["methods"].get(method)
        return "-" if m is None else f"{100 * m['last_accuracy_mean']:.1f} ± {100 * m['last_accuracy_std']:.1f}"

    lines = _method_table(ipcs, METHODS, cell, "practicum", with_source=False)
    lines.append("")
    for i in ipcs:
        for pair, d in report["protocol_A"][str(i)].get("paired", {}).items():
            ci, why = paired_interval(d)
            ci_text = f"95% t interval [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else f"no interval ({why})"
            lines.append(f"- IPC {i}, paired {pair}: {100 * d['mean']:+.1f} points; {ci_text}")
    return "\n".join(lines)


if __name__ == "__main__":
    from practicum.errors import PracticumError

    try:
        main()
    except PracticumError as exc:  # one line, as the CLI does
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
