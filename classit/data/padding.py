"""Right padding of token rows, the one way training batches, zero-shot scoring and fine-tuning pad."""

import torch


def pad_right(rows: list[list[int]], value: int) -> torch.Tensor:
    """The rows as one ``long`` tensor, each right-padded with ``value`` to the longest row."""
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=torch.long)


def pad_with_mask(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and their attention mask (1 on each row's own tokens, 0 on its padding)."""
    return pad_right(rows, value), pad_right([[1] * len(row) for row in rows], 0)
