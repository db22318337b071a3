"""Shared test settings."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # The tiny test models are dominated by thread overheads; on a 2-core machine running other
    # work, two threads made steps ~100x slower. One thread keeps the suite fast and repeatable.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
