"""The one device helper: parsed, checked against this machine, refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genomatt.device import full_float32, resolve_device
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


def _precisions() -> list[str]:
    backends = torch.backends
    return [backends.cudnn.conv.fp32_precision, backends.cudnn.rnn.fp32_precision,
            backends.cuda.matmul.fp32_precision]


def test_full_float32_turns_tf32_off_and_restores_the_flags_after_an_error():
    before = _precisions()
    assert before[0] == "tf32"  # torch's own default for cuDNN convolutions
    with pytest.raises(KeyError):
        with full_float32():
            assert _precisions() == ["ieee"] * 3
            raise KeyError("inside")
    assert _precisions() == before


def test_full_float32_turns_tf32_off_through_the_flags_of_a_torch_before_2_9(monkeypatch):
    # Earlier torch releases have no fp32_precision, only allow_tf32 (which reads both cuDNN flags).
    monkeypatch.setattr(torch.backends.cudnn, "conv", None, raising=False)
    assert torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    with full_float32():
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


class _RecordsPrecision(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 2, 3)
        self.seen: set[str] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.add(torch.backends.cudnn.conv.fp32_precision)
        return torch.relu(self.conv(x)).mean(dim=-1)


def test_attribution_and_hit_calling_run_in_full_float32(monkeypatch):
    from genomatt.attribution import deep_lift_shap
    from genomatt.motifs import hit_calling
    from genomatt.motifs.formats import CwmMotif

    model = _RecordsPrecision()
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 30)), 4).transpose(1, 2).float()
    deep_lift_shap(model, X, target=0, n_shuffles=2, random_state=0)
    assert model.seen == {"ieee"}
    assert _precisions()[0] == "tf32"

    seen = []
    scan = hit_calling._scan  # every window's statistics, for the thresholds and in the pursuit
    monkeypatch.setattr(hit_calling, "_scan", lambda *a, **k: seen.append(_precisions()) or scan(*a, **k))
    motif = CwmMotif(name="m", cwm=np.eye(4)[[0, 1, 2, 3, 0, 1]].T.astype(np.float32))
    hit_calling.call_hits(X.numpy(), X.numpy(), [motif], device="cpu")
    assert seen and all(p == ["ieee"] * 3 for p in seen)
