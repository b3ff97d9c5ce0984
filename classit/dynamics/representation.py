"""Representation change over a run's checkpoints on a fixed probe set: per layer, linear CKA of the hidden states
with the previous and with the last checkpoint and their effective rank; per weight matrix, its norm and its relative
change from the previous checkpoint.

The hidden states of a checkpoint are every non-padding token of the probe sentences (tokenized with the
checkpoint's tokenizer and its default special tokens: BOS first for classit's, as scoring does) at each output of
Hugging Face's ``output_hidden_states`` (index 0 = the embeddings): one batched forward per probe batch gives all
layers. CKA and effective rank are computed in float64 on the states with their columns (features) centred.

``repr.csv`` in long format, one row a number (:data:`COLUMNS`; the caller adds the run and words seen):
``checkpoint`` (its name), ``layer`` (hidden-state index, empty for a weight), ``weight`` (the parameter's name, empty
for a layer), ``metric`` (``cka_prev``, ``cka_last``, ``effective_rank``; ``norm``, ``rel_change``) and ``value``
(empty where there is none: ``cka_prev`` and ``rel_change`` of the first checkpoint).
"""

import math
from pathlib import Path
from typing import NamedTuple

import torch

from classit.data.padding import pad_with_mask
from classit.data.tokenizer import load_tokenizer, tokenizer_fingerprint
from classit.export import load_pretrained
from classit.files import read_json
from classit.runtime import resolve_device

COLUMNS = ("checkpoint", "layer", "weight", "metric", "value")
LAYER_METRICS = ("cka_prev", "cka_last", "effective_rank")
WEIGHT_METRICS = ("norm", "rel_change")
# config.json keys that make two checkpoints one architecture (LLaMA, GPT-2 and most Hub names)
ARCHITECTURE = ("model_type", "vocab_size", "hidden_size", "n_embd", "num_hidden_layers", "n_layer",
                "num_attention_heads", "n_head", "num_key_value_heads", "intermediate_size", "n_inner",
                "tie_word_embeddings")


@torch.no_grad()
def hidden_states(model, tokenizer, sentences: list[str], batch_size: int, device) -> list[torch.Tensor]:
    """Per ``output_hidden_states`` index (0 = the embeddings), the float32 states of every non-padding token of the
    sentences, stacked ``[tokens, hidden]`` in sentence order: one forward of the base model (no LM head) per batch
    of ``batch_size`` sentences, right-padded as classit pads; batches group sentences of similar length."""
    rows = tokenizer(sentences)["input_ids"]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    base = model.base_model
    pieces: list[list[torch.Tensor]] = []
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        ids, mask = pad_with_mask([rows[i] for i in batch], tokenizer.pad_token_id or 0)
        out = base(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
        real = mask.bool().to(device)
        pieces.append([layer[real].float().cpu() for layer in out.hidden_states])
    stacked = [torch.cat(layer) for layer in zip(*pieces)]
    # back to sentence order: the first token of each sentence in sorted order, then a gather
    lengths = torch.tensor([len(rows[i]) for i in order])
    starts = torch.cumsum(lengths, 0) - lengths
    where = torch.empty(len(rows), dtype=torch.long)
    where[torch.tensor(order)] = torch.arange(len(order))
    index = torch.cat([torch.arange(starts[k], starts[k] + lengths[k]) for k in where.tolist()])
    return [layer[index] for layer in stacked]


def _centred(x: torch.Tensor) -> torch.Tensor:
    x = x.to(torch.float64)
    return x - x.mean(0, keepdim=True)


def _similarity(x: torch.Tensor, y: torch.Tensor) -> float:
    """``‖YᵀX‖²_F`` of the column-centred states."""
    return float(torch.linalg.matrix_norm(_centred(y).T @ _centred(x)) ** 2)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two ``[tokens, features]`` matrices of the same tokens, columns centred, in float64:
    ``‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)``."""
    return _cka(_similarity(x, y), _similarity(x, x), _similarity(y, y))


def _cka(cross: float, self_x: float, self_y: float) -> float:
    """CKA from ``‖YᵀX‖²_F``, ``‖XᵀX‖²_F`` and ``‖YᵀY‖²_F``."""
    return cross / math.sqrt(self_x * self_y)


def effective_rank(x: torch.Tensor) -> float:
    """``exp`` of the entropy of the normalised singular values (``σᵢ / Σσ``) of the column-centred ``x``
    (float64): between 1 (one direction) and the number of features (all equal)."""
    return _rank(_gram(x))


def _gram(x: torch.Tensor) -> torch.Tensor:
    """``XᵀX`` of the column-centred ``x``: its eigenvalues are the squared singular values of ``x``."""
    centred = _centred(x)
    return centred.T @ centred


def _rank(gram: torch.Tensor) -> float:
    """The effective rank of the ``x`` of ``gram = XᵀX``."""
    singular = torch.linalg.eigvalsh(gram).clamp(min=0).sqrt()
    p = singular[singular > 0] / singular.sum()
    return float(torch.exp(-(p * p.log()).sum()))


def _weights(model) -> dict[str, torch.Tensor]:
    """The 2-D parameters (weight matrices, embeddings) by name, float32, on the CPU (tied ones once)."""
    return {name: p.detach().float().cpu().clone() for name, p in model.named_parameters() if p.dim() == 2}


def check_comparable(checkpoints: list[tuple[str, Path]]) -> None:
    """Stop in one line naming the checkpoints whose architecture (config.json's model type and sizes) or tokenizer
    differs from the first one's, and in what."""
    first_name, first = checkpoints[0]
    reference = _architecture(first)
    fingerprint = tokenizer_fingerprint(load_tokenizer(first, need_bos=False))
    differ = []
    for name, folder in checkpoints[1:]:
        arch = _architecture(folder)
        what = [f"{key} {arch[key]} (not {reference[key]})" for key in ARCHITECTURE if arch[key] != reference[key]]
        theirs = tokenizer_fingerprint(load_tokenizer(folder, need_bos=False))
        if theirs != fingerprint:
            what.append(f"tokenizer {theirs} (not {fingerprint})")
        if what:
            differ.append(f"{name} ({folder}): {', '.join(what)}")
    if differ:
        raise ValueError(f"the representation metrics compare one architecture and one tokenizer, but these "
                         f"checkpoints differ from the first, {first_name} ({first}): {'; '.join(differ)}")


def _architecture(folder: Path) -> dict:
    config = Path(folder) / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{folder}: not a Hugging Face model folder (no config.json)")
    values = read_json(config)
    return {key: values.get(key) for key in ARCHITECTURE}


class _Measured(NamedTuple):
    """What one checkpoint brings to the comparisons: per layer its states, ``‖XᵀX‖²_F`` and effective rank; its
    weight matrices."""
    states: list[torch.Tensor]
    selves: list[float]
    ranks: list[float]
    weights: dict[str, torch.Tensor]


def _measure(folder: Path, sentences: list[str], batch_size: int, device) -> _Measured:
    model, tokenizer = load_pretrained(folder)
    model.to(device=device, dtype=torch.float32).eval()
    states = hidden_states(model, tokenizer, sentences, batch_size, device)
    grams = [_gram(x) for x in states]
    return _Measured(states, [float(torch.linalg.matrix_norm(g) ** 2) for g in grams], [_rank(g) for g in grams],
                     _weights(model))


def representation_rows(checkpoints: list[tuple[str, Path]], sentences: list[str], batch_size: int = 32,
                        device="auto") -> list[dict]:
    """The rows of ``repr.csv`` (:data:`COLUMNS`) for the checkpoints ``(name, Hugging Face folder)`` in order;
    ``device`` as ``classit evaluate`` chooses it (``auto``: CUDA where there is one). Holds the states of at most
    three checkpoints at once: the last, the previous and the current one."""
    check_comparable(checkpoints)
    device = resolve_device(device) if isinstance(device, str) else device
    last = _measure(checkpoints[-1][1], sentences, batch_size, device)
    rows, previous = [], None
    for k, (name, folder) in enumerate(checkpoints):
        current = last if k == len(checkpoints) - 1 else _measure(folder, sentences, batch_size, device)
        for index, x in enumerate(current.states):
            values = {"cka_prev": None if previous is None else _cka(_similarity(x, previous.states[index]),
                                                                     current.selves[index], previous.selves[index]),
                      "cka_last": _cka(_similarity(x, last.states[index]), current.selves[index], last.selves[index]),
                      "effective_rank": current.ranks[index]}
            rows += [{"checkpoint": name, "layer": index, "weight": "", "metric": metric, "value": value}
                     for metric, value in values.items()]
        for weight, w in current.weights.items():
            change = None if previous is None else float(torch.linalg.norm(w - previous.weights[weight])
                                                         / torch.linalg.norm(previous.weights[weight]))
            rows += [{"checkpoint": name, "layer": "", "weight": weight, "metric": "norm",
                      "value": float(torch.linalg.norm(w))},
                     {"checkpoint": name, "layer": "", "weight": weight, "metric": "rel_change", "value": change}]
        previous = current
    return rows


def plot_representation(rows: list[dict], path: Path, stages: dict[str, str] | None = None) -> Path | None:
    """Heatmaps layer × checkpoint of one run's ``cka_prev``, ``cka_last`` and ``effective_rank`` (rows of
    :func:`representation_rows`, checkpoints in their order there) as one PNG at most 1,500 px wide; ``stages``
    (checkpoint → its curriculum stage) draws a line where a stage begins, labelled with it. None without rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    layer_rows = [r for r in rows if r["metric"] in LAYER_METRICS]
    if not layer_rows:
        return None
    names = list(dict.fromkeys(r["checkpoint"] for r in layer_rows))
    layers = max(r["layer"] for r in layer_rows) + 1
    fig, axes = plt.subplots(1, 3, figsize=(15, 1.2 + 0.25 * max(layers, 8)), squeeze=False)
    for ax, metric in zip(axes[0], LAYER_METRICS):
        grid = np.full((layers, len(names)), np.nan)
        for r in layer_rows:
            if r["metric"] == metric and r["value"] is not None:
                grid[r["layer"], names.index(r["checkpoint"])] = r["value"]
        image = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis",
                          **({"vmin": 0, "vmax": 1} if metric.startswith("cka") else {}))
        fig.colorbar(image, ax=ax, fraction=0.05)
        step = max(1, len(names) // 12)  # at most about 12 labels a panel
        ax.set_xticks(range(0, len(names), step), names[::step], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("layer (0 = embeddings)")
        ax.set_title(metric.replace("_", " "))
        for k in range(1, len(names)):
            if stages and stages.get(names[k]) != stages.get(names[k - 1]):
                ax.axvline(k - 0.5, color="white", lw=1.2)
                ax.text(k - 0.4, layers - 0.6, stages.get(names[k], ""), color="white", fontsize=7, va="top")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
