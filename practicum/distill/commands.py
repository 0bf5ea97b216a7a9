"""`practicum distill`: MGD³ dataset distillation with every baseline, in one run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from practicum.cli_options import (GENERATOR_DEVICE_HELP, config_option, device_option, dtype_option, overwrite_option,
                                   resume_option, run_folder_option)
from practicum.errors import ConfigError
from practicum.log import echo


def register(app: typer.Typer) -> None:
    app.command("distill")(distill)


def _split_list(value: Optional[str], cast=str) -> Optional[list]:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",")]
    if "" in items:
        raise ConfigError(f"{value!r} has an empty item", "separate the values by single commas, e.g. --seeds 0,1,2")
    try:
        return [cast(v) for v in items]
    except ValueError:
        raise ConfigError(f"cannot read {value!r} as a comma-separated list of {cast.__name__}",
                          "e.g. --seeds 0,1,2") from None


def distill(
    out: Path = run_folder_option(Path("runs/distill"), "Run directory."),
    ipc: Optional[int] = typer.Option(None, "--ipc", help="Images per class (1, 10, 50, ...). Default 10."),
    data: Optional[str] = typer.Option(None, "--data", help="fashion (default), digits, folder:PATH or npz:PATH."),
    model: Optional[str] = typer.Option(None, "--model",
                                        help="builtin (default: the data's built-in generator) or a model folder."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Resize the user's images to this size."),
    methods: Optional[str] = typer.Option(None, "--methods",
                                          help="Comma list of random-real,kmeans-nearest-real,herding,unguided,"
                                               "mode-no-stop,mgd3 (default: all)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma list of seeds (default 0,1,2)."),
    lam: Optional[float] = typer.Option(None, "--lam", help="Mode-guidance strength λ (default: tuned per data)."),
    t_stop: Optional[int] = typer.Option(None, "--t-stop", help="Guide while step index i > t_stop (default: tuned)."),
    cfg_scale: Optional[float] = typer.Option(None, "--cfg-scale", help="Classifier-free guidance scale."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Sampling steps S (default: the data's tuned count; 20 for fashion, 50 untuned)."),
    mode_method: Optional[str] = typer.Option(None, "--mode-method", help="kmeans (default), gmm or random."),
    protocol: Optional[str] = typer.Option(None, "--protocol",
                                           help="A (default: ConvNet-3, DSA, final epoch), A-full (the literature's "
                                                "code exactly: normalised inputs, DC ConvNet-3, DSA, ≥ 5 students) or B "
                                                "(MGD³'s: CutMix, best and last)."),
    students: Optional[int] = typer.Option(None, "--students",
                                           help="Student networks per distilled set (default: A-full 5, else 3)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Student epochs (default: A 1000, B by IPC)."),
    width: Optional[int] = typer.Option(None, "--width", help="Student width (default 128)."),
    student: Optional[str] = typer.Option(None, "--student", help="convnet (default), resnetap10, resnet18, cnn, mlp."),
    epoch_scale: Optional[float] = typer.Option(None, "--epoch-scale",
                                                help="Multiply the protocol's epochs (budget knob; default 1)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="hard (default) or soft (teacher KD)."),
    eval_split: Optional[str] = typer.Option(None, "--eval-split", help="test (default) or tune (for tuning)."),
    device: Optional[str] = device_option(GENERATOR_DEVICE_HELP),
    dtype: Optional[str] = dtype_option(),
    class_map: Optional[str] = typer.Option(None, "--class-map",
                                            help="Data class folder → model class and name (LOC_synset_mapping.txt, "
                                                 "CSV wnid,name[,index] or JSON); needed for DiT-XL/2 on a subset."),
    prompt_template: Optional[str] = typer.Option(None, "--prompt-template", help="SD prompt, e.g. 'a photo of a {name}'."),
    config: Optional[Path] = config_option(),
    engine: str = typer.Option("local", "--engine", help="local or ray: where class shards are generated."),
    resume: bool = resume_option(),
    overwrite: bool = overwrite_option(),
) -> None:
    """Distil a dataset to IPC images per class with MGD³ and compare it with the baselines."""
    from practicum.distill.pipeline import DistillSettings, print_summary, run_distill  # lazy: CLI start-up

    settings = DistillSettings.from_flags(config, out, resume, dict(
        ipc=ipc, data=data, model=model, image_size=image_size, methods=_split_list(methods),
        seeds=_split_list(seeds, int), lam=lam, t_stop=t_stop, cfg_scale=cfg_scale, steps=steps, mode_method=mode_method,
        eval_split=eval_split, device=device, model_dtype=dtype, class_map=class_map, prompt_template=prompt_template,
        student=dict(arch=student, epoch_scale=epoch_scale, labels=labels, protocol=protocol, students=students,
                     epochs=epochs, width=width)))
    summary = run_distill(settings, out, resume=resume, overwrite=overwrite, engine=engine)
    print_summary(summary)
    echo(f"run directory: {out} (summary.json, report.html, pool/, figures/)")
