"""The figure of what a run's checkpoints had seen: cumulative words per source (matplotlib, Agg backend)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_seen(run_seen: list[dict], path: Path) -> Path | None:
    """Cumulative words of each source against the checkpoints (``seen.json`` contents, in step order), the end of
    each curriculum stage marked; None when there is nothing to draw."""
    if not run_seen:
        return None
    names = list(run_seen[0]["sources"])
    x = range(len(run_seen))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(run_seen) + 3), 4))
    for name in names:
        ax.plot(x, [s["sources"][name]["words"] for s in run_seen], marker="o", ms=3, label=name)
    ends = {}  # each stage's name → the first checkpoint that had trained all its epochs
    for i, seen in enumerate(run_seen):
        for stage in seen["stages"]:
            if stage["name"] not in ends and stage["epochs_done"] >= stage["epochs"]:
                ends[stage["name"]] = i
    for name, i in ends.items():
        ax.axvline(i, color="grey", lw=0.8, ls="--")
        ax.text(i, ax.get_ylim()[1], f" end of {name}", rotation=90, va="top", ha="right", fontsize=8, color="grey")
    ax.set_xticks(list(x), [s.get("checkpoint", str(s["step"])) for s in run_seen], rotation=45, ha="right",
                  fontsize=8)
    ax.set_ylabel("words seen (cumulative)")
    ax.set_title("what each checkpoint had seen")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
