"""In-process runs of the real CLI entry point, shared by the command tests."""

from __future__ import annotations

from practicum.cli import main


def run_cli(*args: str) -> int:
    """`practicum --quiet ARGS` in this process; its exit code (0 when it returns)."""
    try:
        main(["--quiet", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def assert_rate_resumes_exactly(tmp_path, monkeypatch, args: list[str]) -> None:
    """`practicum rate ARGS` stopped by Ctrl-C in its second epoch, then `--resume`d, writes the same rater
    bytes as an uninterrupted run."""
    from practicum.select.rater import RaterTrainer

    assert run_cli("rate", "--out", str(tmp_path / "straight"), *args) == 0
    original = RaterTrainer.run_epoch

    def crash_on_second_epoch(self, epoch, *rest):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch, *rest)

    monkeypatch.setattr(RaterTrainer, "run_epoch", crash_on_second_epoch)
    assert run_cli("rate", "--out", str(tmp_path / "resumed"), *args) == 130
    monkeypatch.setattr(RaterTrainer, "run_epoch", original)
    assert run_cli("rate", "--out", str(tmp_path / "resumed"), "--resume") == 0
    straight = (tmp_path / "straight" / "rater.safetensors").read_bytes()
    assert (tmp_path / "resumed" / "rater.safetensors").read_bytes() == straight
