"""`practicum study` (DP vs static generation, the README's main job) and `practicum practice`
(one Deliberate Practice run)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from practicum.cli_options import (LEARNER_AND_GENERATOR_DEVICE_HELP, config_option, device_option, dtype_option,
                                   gradient_checkpointing_option, guidance_batch_option, overwrite_option,
                                   resume_option, run_folder_option, vae_slicing_option)
from practicum.config import given, merge_values
from practicum.errors import ConfigError
from practicum.log import echo, logger
from practicum.validate import check_out, data_input, model_input


def register(app: typer.Typer) -> None:
    app.command("study")(study)
    app.command("practice")(practice_command)


def study(
    out: Path = run_folder_option(Path("runs/study")),
    quick: bool = typer.Option(False, "--quick", help="2 seeds, static grid to 4x the start, 300 iterations: the smoke test."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Runs per strategy."),
    omega: Optional[float] = typer.Option(None, "--omega", help="Entropy guidance strength of DP."),
    strategies: Optional[str] = typer.Option(None, "--strategies",
                                             help="Comma list from static,dp,vanilla,prune (default static,dp; "
                                                  "vanilla = DP's rounds at ω = 0, prune = generate-then-prune)."),
    model: Optional[str] = typer.Option(None, "--model", help="Generator: 'builtin' or a local diffusers folder."),
    data: Optional[str] = typer.Option(None, "--data", help="Real val/test data: fashion (default), digits, "
                                       "folder:PATH, npz:PATH."),
    engine: str = typer.Option("local", "--engine", help="local (default) or ray: where the independent runs go."),
    workers: Optional[int] = typer.Option(None, "--workers",
                                          help="Local engine: runs and bank shards in this many processes at once "
                                               "(default: one per core, at most 8). Results do not depend on it."),
    device: Optional[str] = device_option(LEARNER_AND_GENERATOR_DEVICE_HELP),
    dtype: Optional[str] = dtype_option(),
    config: Optional[Path] = config_option(),
    resume: bool = resume_option("Continue the study in --out (finished runs are kept); without settings flags "
                                 "it uses the study's own config.yaml."),
    overwrite: bool = overwrite_option(),
) -> None:
    """Deliberate Practice vs static generation on real held-out data (Fashion-MNIST by default):
    static on a geometric grid up to its plateau and DP with branch-outs (and, with --strategies,
    dynamic-vanilla and generate-then-prune) over several seeds; per-seed data multipliers (t intervals from 5 seeds),
    paired gains, fitted laws, figures and report.html."""
    from practicum.practice.study import StudySettings, print_summary, run_study, study_settings  # lazy: CLI start-up

    # --config, else on a bare --resume the study's own config.yaml (--quick too), else nothing
    strategy_list = None if strategies is None else [v.strip() for v in strategies.split(",") if v.strip()]
    values = merge_values(StudySettings.base_values(config, out, resume),
                          given({"strategies": strategy_list,
                                 "practice": {"omega": omega, "data": data, "device": device,
                                              "generator": {"model": model, "model_dtype": dtype}}}))
    settings = study_settings(values, quick=quick, seeds=seeds, data=data)
    summary = run_study(out, settings, engine=engine, resume=resume, overwrite=overwrite, workers=workers)
    print_summary(summary, out)


def practice_command(
    out: Path = run_folder_option(Path("runs/practice")),
    resume: bool = resume_option(),
    legacy_resume_dir: Optional[Path] = typer.Argument(None, hidden=True, metavar="",
                                                       help="Deprecated: `--resume DIR` means `--out DIR --resume`."),
    overwrite: bool = overwrite_option(),
    config: Optional[Path] = config_option(),
    omega: Optional[float] = typer.Option(None, "--omega", help="Entropy guidance strength (0 = dynamic-vanilla)."),
    initial_size: Optional[int] = typer.Option(None, "--initial-size", help="N: vanilla samples to start with."),
    add_size: Optional[int] = typer.Option(None, "--add-size", help="P: samples added per round."),
    iterations: Optional[int] = typer.Option(None, "--iterations", help="Training iterations (the budget)."),
    t_init: Optional[int] = typer.Option(None, "--t-init", help="Initial patience."),
    max_rounds: Optional[int] = typer.Option(None, "--max-rounds", help="Stop adding after this many rounds."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Learner architecture (cnn, mlp, resnet18, ...)."),
    model: Optional[str] = typer.Option(None, "--model", help="Generator: 'builtin' or a local diffusers folder."),
    data: Optional[str] = typer.Option(None, "--data", help="Real val/test data: fashion (default), digits, "
                                       "folder:PATH, npz:PATH."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    engine: str = typer.Option("local", "--engine", help="local or ray (generation shards, branch-outs)."),
    device: Optional[str] = device_option(LEARNER_AND_GENERATOR_DEVICE_HELP),
    dtype: Optional[str] = dtype_option(),
    guidance_batch: Optional[int] = guidance_batch_option(),
    gradient_checkpointing: Optional[bool] = gradient_checkpointing_option(),
    vae_slicing: Optional[bool] = vae_slicing_option(),
    learner: Optional[str] = typer.Option(None, "--learner", help="Custom learner network: module:factory "
                                                                  "(called with num_classes and image_shape)."),
) -> None:
    """One Deliberate Practice run: start from N vanilla samples, add P entropy-guided samples
    whenever validation accuracy stops improving, report test accuracy at every branch-out.
    Fashion-MNIST by default, with the study's settings for it (--config and flags override them)."""
    from practicum.data import RunDir  # lazy: CLI start-up
    from practicum.practice.loop import practice  # lazy: CLI start-up
    from practicum.practice.settings import PracticeSettings, check_pool_memory  # lazy: CLI start-up

    if legacy_resume_dir is not None:
        if not resume:
            raise ConfigError(f"unexpected argument {legacy_resume_dir}", "practice takes no positional arguments")
        logger.warning("`--resume DIR` is deprecated; use `--out %s --resume`", legacy_resume_dir)
        out = check_out(legacy_resume_dir)
        if not (out / "config.yaml").is_file():
            raise ConfigError(f"{out} holds no run to resume", "give the folder of an earlier `practicum practice`")
    if learner is not None:
        if arch is not None:
            raise ConfigError("--learner and --arch both name the learner", "give one of them")
        arch = learner  # build_model imports module:factory itself, so saved runs reload it too
    values = PracticeSettings.base_values(config, out, resume)
    values = merge_values(_data_preset(data or values.get("data") or PracticeSettings.model_fields["data"].default),
                          values)
    settings = PracticeSettings.build(merge_values(values, given(dict(
        omega=omega, initial_size=initial_size, add_size=add_size, t_init=t_init, max_rounds=max_rounds, arch=arch,
        data=data, seed=seed, device=device, train={"steps": iterations},
        generator=dict(model=model, model_dtype=dtype, guidance_batch=guidance_batch,
                       gradient_checkpointing=gradient_checkpointing, vae_slicing=vae_slicing)))))
    val, test = settings.load_data("val"), settings.load_data("test")
    check_pool_memory(settings, val.image_shape)
    generator = settings.make_generator(val, engine=engine)
    with RunDir.create(out, settings.to_yaml(), seed=settings.seed, resume=resume, overwrite=overwrite,
                       inputs={"--model": model_input(settings.generator.model),
                               "--data": data_input(settings.data)}) as run:
        result = practice(run, settings, generator, val, test, engine=engine)
        run.finish(rounds=result["rounds"], pool_size=result["pool_size"])
    echo(f"{'size':>7} {'kind':>7} {'val':>7} {'test':>7}")
    for p in result["points"]:
        echo(f"{p['size']:>7} {p['kind']:>7} {100 * p['val_accuracy']:>6.1f}% {100 * p.get('test_accuracy', 0):>6.1f}%")
    echo(f"{result['rounds']} rounds, pool {result['pool_size']}; generation {result['seconds']['generate']:.0f} s, "
         f"training {result['seconds']['train']:.0f} s; run folder {out}")


def _data_preset(data: str) -> dict:
    """The study's run settings for a built-in data set (empty for the user's own data)."""
    from practicum.diffusion.builtin import builtin_name  # lazy: CLI start-up
    from practicum.practice.study import PRESETS  # lazy: CLI start-up

    return PRESETS.get(builtin_name(data) or "", {}).get("practice", {})
