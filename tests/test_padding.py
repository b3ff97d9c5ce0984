"""Right padding of token rows, the one way batches are padded."""

import torch

from classit.data.padding import pad_right, pad_with_mask


def test_rows_are_right_padded_to_the_longest():
    padded = pad_right([[5, 6, 7], [8]], -100)
    assert padded.dtype == torch.long
    assert padded.tolist() == [[5, 6, 7], [8, -100, -100]]


def test_the_mask_marks_each_rows_own_tokens():
    ids, mask = pad_with_mask([[1], [2, 3]], 0)
    assert ids.tolist() == [[1, 0], [2, 3]]
    assert mask.tolist() == [[1, 0], [1, 1]] and mask.dtype == torch.long
