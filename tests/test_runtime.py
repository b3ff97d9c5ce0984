"""What a command sets up for its process: the device it computes on, the quiet filters."""

import logging
import warnings

import torch

from classit.runtime import QUIET, quiet_logs, resolve_device


def test_auto_is_cuda_where_there_is_one_else_the_cpu():
    assert resolve_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_the_quiet_filters_drop_lightnings_noise_and_its_advice_to_sync_validation_losses():
    quiet_logs()
    assert not QUIET.filter(logging.LogRecord("x", logging.INFO, "", 0, "GPU available: False", None, None))
    assert QUIET.filter(logging.LogRecord("x", logging.INFO, "", 0, "Epoch 1", None, None))
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("It is recommended to use `self.log('val/loss', ..., sync_dist=True)`")
    assert not caught
