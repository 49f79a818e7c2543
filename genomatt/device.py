"""Choice of the torch device models train and run on."""

from __future__ import annotations

import torch

from genomatt.errors import ConfigError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to run a model on.

    Parameters
    ----------
    device : str or torch.device, optional
        The requested device, e.g. ``"cpu"`` or ``"cuda:0"``; default: the GPU when there is one,
        else the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ConfigError
        If ``device`` names no torch device.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"invalid device {device!r}: {error}") from None
