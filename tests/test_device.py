"""The one device helper: parsed, checked against this machine, refused in one line."""

from __future__ import annotations

import pytest
import torch

from genomatt.device import resolve_device
from genomatt.errors import ConfigError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def test_default_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("device, message", [
    ("cudaa", "device 'cudaa' is not a torch device; expected cpu, cuda, cuda:<index> or mps"),
    ("cuda:x", "device 'cuda:x' is not a torch device"),
    ("", "device '' is not a torch device"),
    ("meta", "device 'meta': genomatt runs on cpu, cuda, mps, not meta"),
])
def test_invalid_device_is_refused(device, message):
    with pytest.raises(ConfigError, match=message):
        resolve_device(device)


@no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_cuda_is_refused(device):
    with pytest.raises(ConfigError, match="use cpu, or run on a GPU node with a CUDA build of torch"):
        resolve_device(device)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_index_beyond_the_gpus_is_refused():
    count = torch.cuda.device_count()
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ConfigError, match=f"this machine has {count} CUDA GPU"):
        resolve_device(f"cuda:{count}")
