"""Choice of the torch device models train and run on: the one place a device is parsed and checked."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from genomatt.errors import ConfigError

SUPPORTED_TYPES = ("cpu", "cuda", "mps")

# Where float32 operations may run in TensorFloat-32 on a GPU (cuDNN convolutions and RNNs do by default).
_FP32_PRECISION_FLAGS = (("cudnn", "conv"), ("cudnn", "rnn"), ("cuda", "matmul"))


def _tf32_switches() -> list[tuple[object, str, object]]:
    """(object, attribute, its value for full float32) of each switch of TF32 in this torch."""
    backends = torch.backends
    if hasattr(getattr(backends.cudnn, "conv", None), "fp32_precision"):  # torch 2.9 and later
        return [(getattr(getattr(backends, backend), op), "fp32_precision", "ieee")
                for backend, op in _FP32_PRECISION_FLAGS]
    return [(backends.cudnn, "allow_tf32", False), (backends.cuda.matmul, "allow_tf32", False)]


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """Run float32 operations in float32 on a GPU (TF32 off); put the precision flags back afterwards.

    cuDNN runs float32 convolutions in TensorFloat-32 by default on NVIDIA GPUs since Ampere: operands
    keep 10 bits of mantissa (relative rounding about 5e-4), so the outputs of a sequence and of its
    reference round apart and f(x) - f(ref) misses the sum of contributions by far more than the
    summation-to-delta tolerance, and a GPU's hits would differ from the CPU's. Attribution and hit
    calling run inside this; reduced precision stays available explicitly, through ``autocast``.
    The flags are global to the process; the CPU ignores them. Usable as a decorator.
    """
    switches = _tf32_switches()
    saved = [getattr(owner, name) for owner, name, _ in switches]
    try:
        for owner, name, value in switches:
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name, _), value in zip(switches, saved):
            setattr(owner, name, value)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to run a model on, checked to exist on this machine.

    Parameters
    ----------
    device : str or torch.device, optional
        The requested device: ``"cpu"``, ``"cuda"``, ``"cuda:<index>"`` or ``"mps"``; default: the GPU
        when there is one, else the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ConfigError
        If ``device`` names no torch device, a kind genomatt does not run on, or a device this machine
        does not have (e.g. ``cuda`` with a CPU-only torch or no visible GPU, ``cuda:3`` with two GPUs).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {str(device)!r} is not a torch device; expected cpu, cuda, cuda:<index> "
                          "or mps") from None
    if parsed.type not in SUPPORTED_TYPES:
        raise ConfigError(f"device {str(device)!r}: genomatt runs on {', '.join(SUPPORTED_TYPES)}, "
                          f"not {parsed.type}")
    if parsed.type == "cuda":
        _check_cuda(parsed, str(device))
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {str(device)!r}: MPS is not available on this machine; use cpu")
    return parsed


def _check_cuda(device: torch.device, requested: str) -> None:
    if not torch.cuda.is_available():
        reason = ("this torch is built without CUDA" if torch.version.cuda is None
                  else "no CUDA GPU is visible on this machine")
        raise ConfigError(f"device {requested!r}: {reason} (torch {torch.__version__}); use cpu, or run on a "
                          "GPU node with a CUDA build of torch")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(f"device {requested!r}: this machine has {count} CUDA GPU(s), numbered 0 to {count - 1}")
