"""Choice of the torch device models train and run on: the one place a device is parsed and checked."""

from __future__ import annotations

import torch

from genomatt.errors import ConfigError

SUPPORTED_TYPES = ("cpu", "cuda", "mps")


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
