"""Helpers shared by the end-to-end tests."""

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard recorded in ``log_dir``: tag → [(step, value)]."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def small_corpus(data_root: Path, root: Path) -> Path:
    """A data folder whose train and dev splits are two real BabyLM dev files."""
    for split, suffix in (("train", ".train"), ("dev", ".dev")):
        (root / split).mkdir(parents=True)
        for name in ("childes", "switchboard"):
            (root / split / f"{name}{suffix}").symlink_to(data_root / "babylm-corpus/dev" / f"{name}.dev")
    return root


def small_eval_fast(data_root: Path, root: Path) -> Path:
    """``root/babylm-eval-fast`` with a few real BLiMP and EWoK items, for the demos' zero-shot callback."""
    for task, files in (("blimp_fast", 3), ("ewok_fast", 2)):
        (root / "babylm-eval-fast" / task).mkdir(parents=True)
        for path in sorted((data_root / "babylm-eval-fast" / task).glob("*.jsonl"))[:files]:
            lines = path.read_text().splitlines(keepends=True)[:20]
            (root / "babylm-eval-fast" / task / path.name).write_text("".join(lines))
    return root
