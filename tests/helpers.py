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
