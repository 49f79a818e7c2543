"""Saving genomatt model artefacts and loading any supported model for explanation.

A genomatt artefact is one ``torch.save`` file holding plain data only (so it loads with
``weights_only=True`` and never runs pickled code)::

    {"format": "genomatt-model", "format_version": 1,
     "architecture": {"architecture": "bpnet", "n_tasks": ..., ...},
     "state_dict": {...},
     "metadata": {"input_length", "alphabet", "channel_order", "task_names", "output",
                  "training_config", "test_metrics", "genomatt_version", "content_hash", "created"}}

:func:`load` also accepts any TorchScript file, a state dict with an architecture config (YAML/JSON),
and ``package.module:factory`` plus weights for models genomatt does not know.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import inspect
import io
import json
import logging
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import yaml
from torch import nn

from genomatt import ALPHABET, __version__
from genomatt.atomic import atomic_path
from genomatt.errors import ConfigError, ModelError, missing_file
from genomatt.models.architectures import ARCHITECTURES, build_model
from genomatt.device import resolve_device

log = logging.getLogger(__name__)

ARTEFACT_FORMAT = "genomatt-model"
ARTEFACT_VERSION = 1
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
_IMPORT_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
# Keys of a model config file that are not parameters of the architecture itself.
_CONFIG_KEYS = ("weights", "task_names")
_FACTORY_KEYS = ("factory", "kwargs", "weights", "task_names", "input_length")


@dataclass
class LoadedModel:
    """A model ready for explanation, with what genomatt knows about it.

    Attributes
    ----------
    model
        The module, in eval mode, on the requested device. Takes one-hot ``(N, 4, L)``.
    task_names
        One name per output column when the model returns ``(N, T)`` (``task_0`` ... if the source
        names none); empty when it returns something else (e.g. a profile head), where the caller
        must choose a ``target``.
    input_length
        Input length L in bp the model was checked at.
    content_hash
        sha256 of the weights (see :func:`content_hash`).
    source
        How it was loaded: ``"genomatt"``, ``"torchscript"``, ``"config"`` or ``"import"``.
    output_shapes
        Shape of each output per sequence, as seen on the dummy batch (``[(T,)]`` for ``(N, T)``).
    metadata
        The artefact's metadata (training config, test metrics, ...) for genomatt artefacts; for
        other sources the spec and weights path.
    """

    model: nn.Module
    task_names: list[str]
    input_length: int
    content_hash: str
    source: str
    output_shapes: list[tuple[int, ...]]
    metadata: dict = field(default_factory=dict)


def content_hash(model: nn.Module) -> str:
    """sha256 over the model's state dict: every entry's name, dtype, shape and raw bytes, by name.

    Two models with equal weights have equal hashes whatever device or file they came from.
    """
    digest = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _plain_data(value: object, what: str) -> object:
    """Round-trip through JSON so the artefact holds only types ``weights_only`` loading accepts."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise ModelError(f"{what} must be JSON-serialisable to be stored in a model artefact: {error}") from None


def save_model(
    model: nn.Module,
    path: str | os.PathLike,
    task_names: Sequence[str],
    training_config: Mapping | None = None,
    test_metrics: Mapping | None = None,
) -> str:
    """Write a genomatt model artefact atomically.

    Parameters
    ----------
    model
        A model built by :func:`genomatt.models.build_model` (it carries ``model.config``).
    path
        Destination ``.pt`` file.
    task_names
        One name per model output.
    training_config
        How the model was trained (recorded as is; JSON-serialisable).
    test_metrics
        Metrics on held-out data (JSON-serialisable).

    Returns
    -------
    str
        The content hash of the saved weights.
    """
    config = getattr(model, "config", None)
    if not isinstance(config, Mapping) or config.get("architecture") not in ARCHITECTURES:
        raise ModelError(
            f"save_model stores genomatt architectures ({sorted(ARCHITECTURES)}) built by build_model; "
            f"{type(model).__name__} has no such config. Save your own models as TorchScript "
            "(torch.jit.script(model).save(path)) or as a state dict, and load them with genomatt.models.load"
        )
    task_names = [str(name) for name in task_names]
    if len(task_names) != config["n_tasks"]:
        raise ModelError(f"the model has {config['n_tasks']} outputs but {len(task_names)} task names were given")
    weights_hash = content_hash(model)
    metadata = {
        "input_length": int(config["input_length"]),
        "alphabet": ALPHABET,
        "channel_order": list(ALPHABET),
        "task_names": task_names,
        "output": "logits",
        "training_config": _plain_data(dict(training_config or {}), "training_config"),
        "test_metrics": _plain_data(dict(test_metrics or {}), "test_metrics"),
        "genomatt_version": __version__,
        "content_hash": weights_hash,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    payload = {
        "format": ARTEFACT_FORMAT,
        "format_version": ARTEFACT_VERSION,
        "architecture": _plain_data(dict(config), "architecture config"),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "metadata": metadata,
    }
    # Serialised in memory first: torch.save reports a full disk as an opaque RuntimeError.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    return weights_hash


def _archive_names(path: Path) -> list[str]:
    """The base names of the members of a zip archive (torch.save, TorchScript, torch.export); none for others."""
    try:
        with zipfile.ZipFile(path) as archive:
            return [name.rsplit("/", 1)[-1] for name in archive.namelist()]
    except (zipfile.BadZipFile, OSError):
        return []


def _cut_short(path: Path) -> bool:
    """Whether ``path`` starts as a zip archive (torch.save, TorchScript) but has no end record: a file cut short."""
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            return False
    return not zipfile.is_zipfile(path)


def _is_torchscript(path: Path) -> bool:
    # TorchScript archives carry constants.pkl and code/; torch.save zip files carry neither.
    return "constants.pkl" in _archive_names(path)


def _torch_load(path: Path, what: str) -> object:
    if "archive_format" in _archive_names(path):  # torch.export.save's .pt2 package
        raise ModelError(
            f"{path}: a torch.export program (.pt2), which genomatt does not load: its graph of ATen operations is "
            "not the model's layers. Give the model as TorchScript (torch.jit.script(model).save(path)) or its "
            "Python class with weights (package.module:factory and torch.save(model.state_dict(), path))"
        )
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: cannot read {what}: the file is empty (was its writing cut short?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        if _cut_short(path):
            raise ModelError(f"{path}: cannot read {what}: the file is cut short (its archive has no end record: was "
                             "its writing or copying interrupted?)") from None
        raise ModelError(f"{path}: cannot read {what} ({type(error).__name__}: {error})") from None
    except Exception as error:  # the unpickler raises many types for files of arbitrary content
        pickled = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if pickled:
            raise ModelError(
                f"{path}: holds pickled Python objects ({pickled.group(1)}, e.g. a whole module saved with "
                "torch.save(model)), which genomatt does not unpickle because that can run arbitrary code. Save "
                "the model as TorchScript (torch.jit.script(model).save(path)) or its state dict "
                "(torch.save(model.state_dict(), path)) with an architecture config or import spec"
            ) from None
        detail = str(error).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
        raise ModelError(f"{path}: cannot read {what}: not a torch.save or TorchScript file ({detail})") from None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelError(missing_file(path, "weights file"))
    if _is_torchscript(path):
        raise ModelError(f"{path}: is a TorchScript model, not a state dict; load it on its own: load({str(path)!r})")
    state = _torch_load(path, "weights")
    if isinstance(state, Mapping) and state.get("format") == ARTEFACT_FORMAT:
        raise ModelError(
            f"{path}: is a genomatt model artefact, not a state dict; load it on its own: load({str(path)!r})"
        )
    if (
        not isinstance(state, Mapping)
        or not state
        or not all(isinstance(value, torch.Tensor) for value in state.values())
    ):
        found = f"a {type(state).__name__}" + (f" with keys {list(state)[:5]}" if isinstance(state, Mapping) else "")
        nested = ("; a training checkpoint (PyTorch Lightning's and most others') holds the state dict under "
                  "'state_dict': save that alone (torch.save(checkpoint['state_dict'], 'weights.pt')), its names "
                  "without the prefix of the attribute that holds the model"
                  if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping) else "")
        raise ModelError(
            f"{path}: expected a state dict (parameter name → tensor, as written by "
            f"torch.save(model.state_dict(), path)), found {found}{nested}"
        )
    return dict(state)


def _listed(names: list[str]) -> str:
    """Up to five names, and how many more there are."""
    return f"{names[:5]}" + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _prefix_hint(missing: list[str], unexpected: list[str]) -> str:
    """Where the file's names are the model's with a prefix (``module.`` of DataParallel, a wrapper's attribute), a
    clause naming it."""
    if not missing or len(unexpected) != len(missing):
        return ""
    candidates = {name[: len(name) - len(own)] for name in unexpected for own in missing if name.endswith("." + own)}
    # A nested model's names end one another's on a dot ("0.weight", "2.0.weight"): the prefix is the one that turns
    # every name of the file into the model's.
    for prefix in sorted(candidates, key=len):
        if all(name.startswith(prefix) for name in unexpected) and \
                sorted(name[len(prefix):] for name in unexpected) == missing:
            return (f"; the file's names are the model's with the prefix {prefix!r} (saved from a wrapper, e.g. "
                    f"DataParallel's 'module.'): remove it from each name and save the state dict again")
    return ""


def _load_weights(model: nn.Module, path: Path, where: str) -> None:
    state = _read_state_dict(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        model_keys, file_keys = set(model.state_dict()), set(state)
        missing, unexpected = sorted(model_keys - file_keys), sorted(file_keys - model_keys)
        detail = (
            f"missing {_listed(missing)}, unexpected {_listed(unexpected)}{_prefix_hint(missing, unexpected)}"
            if missing or unexpected
            else str(error).split("\n", 1)[-1].strip()
        )
        raise ModelError(f"{path}: weights do not fit the model of {where}: {detail}") from None


def _load_artefact(path: Path, payload: Mapping) -> tuple[nn.Module, dict]:
    if payload.get("format_version") != ARTEFACT_VERSION:
        raise ModelError(
            f"{path}: genomatt model format version {payload.get('format_version')!r}; this genomatt "
            f"({__version__}) reads version {ARTEFACT_VERSION}"
        )
    missing = sorted({"architecture", "state_dict", "metadata"} - set(payload))
    if missing:
        raise ModelError(f"{path}: genomatt model artefact without {missing}; the file is corrupted or was edited")
    model = build_model(payload["architecture"], source=str(path))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise ModelError(
            f"{path}: the weights do not fit the recorded architecture; the file is corrupted or was edited ({error})"
        ) from None
    metadata = dict(payload["metadata"])
    if content_hash(model) != metadata.get("content_hash"):
        raise ModelError(
            f"{path}: the weights do not match the content hash recorded at saving; the file is corrupted or was edited"
        )
    return model, metadata


def _load_file(path: Path, device: torch.device) -> tuple[nn.Module, str, dict]:
    if _is_torchscript(path):
        try:
            model = torch.jit.load(str(path), map_location=device)
        except Exception as error:  # TorchScript raises RuntimeError subclasses and C++ errors
            raise ModelError(f"{path}: cannot load TorchScript model ({type(error).__name__}: {error})") from None
        return model, "torchscript", {"file": str(path)}
    payload = _torch_load(path, "model file")
    if isinstance(payload, Mapping) and payload.get("format") == ARTEFACT_FORMAT:
        model, metadata = _load_artefact(path, payload)
        return model, "genomatt", metadata
    if isinstance(payload, Mapping) and payload and all(isinstance(value, torch.Tensor) for value in payload.values()):
        raise ModelError(
            f"{path}: holds only weights (a state dict); say which model they belong to with an "
            "architecture config (load('model.yaml', weights=path)) or an import spec "
            "(load('package.module:factory', weights=path))"
        )
    raise ModelError(
        f"{path}: not a model genomatt can load; expected a genomatt artefact, a TorchScript file, or a "
        f"state dict with a config or import spec (found a {type(payload).__name__})"
    )


def _read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read model config ({error})") from None
    if not isinstance(config, dict) or ("architecture" in config) == ("factory" in config):
        raise ConfigError(
            f"{path}: a model config is a mapping with either 'architecture' (one of {sorted(ARCHITECTURES)}) "
            "and its parameters, or 'factory' (package.module:function) and optional 'kwargs'"
        )
    return config


def _import_factory(spec: str) -> object:
    module_name, _, attribute_path = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
    except Exception as error:  # importing user code may raise anything, not only ImportError
        raise ModelError(
            f"{spec}: cannot import module {module_name!r} ({type(error).__name__}: {error}); "
            "is its package installed or on PYTHONPATH?"
        ) from None
    for attribute in attribute_path.split("."):
        if not hasattr(target, attribute):
            raise ModelError(
                f"{spec}: {target.__name__ if hasattr(target, '__name__') else target!r} has no attribute {attribute!r}"
            )
        target = getattr(target, attribute)
    if not callable(target):
        raise ModelError(
            f"{spec}: {attribute_path} is not callable; expected a function or class returning a torch.nn.Module"
        )
    return target


def _build_from_factory(spec: str, kwargs: Mapping) -> nn.Module:
    if not _IMPORT_SPEC.match(spec):
        raise ModelError(f"{spec!r}: expected an import spec of the form package.module:factory")
    factory = _import_factory(spec)
    try:
        model = factory(**kwargs)
    except Exception as error:  # user code may raise anything
        raise ModelError(
            f"{spec}: calling the factory with {dict(kwargs)} failed ({type(error).__name__}: {error})"
        ) from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"{spec}: the factory returned a {type(model).__name__}, expected a torch.nn.Module")
    return model


def _load_config(path: Path, weights: Path | None) -> tuple[nn.Module, dict, int | None]:
    """Build the model a config describes and load its weights; return it, metadata, declared length."""
    config = _read_config(path)
    if weights is None and config.get("weights") is not None:
        # Relative weights paths are relative to the config, so a model folder can be moved whole.
        weights = path.parent / str(config["weights"])
    if "architecture" in config:
        architecture = {key: value for key, value in config.items() if key not in _CONFIG_KEYS}
        model = build_model(architecture, source=str(path))
        if weights is None:
            raise ModelError(
                f"{path}: names no weights for its {config['architecture']}; add 'weights: PATH' to it, or give them "
                "(a sample's weights:, --weights)"
            )
        declared_length = int(architecture["input_length"])
    else:
        unknown = sorted(set(config) - set(_FACTORY_KEYS))
        if unknown:
            raise ConfigError(f"{path}: unknown keys {unknown} for a factory config; expected {list(_FACTORY_KEYS)}")
        kwargs = config.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise ConfigError(f"{path}: 'kwargs' must be a mapping of keyword arguments, got {kwargs!r}")
        model = _build_from_factory(str(config["factory"]), kwargs)
        declared_length = int(config["input_length"]) if config.get("input_length") is not None else None
    if weights is not None:
        _load_weights(model, weights, str(path))
    metadata = {"config": str(path), "weights": str(weights) if weights else None}
    if config.get("task_names") is not None:
        metadata["task_names"] = [str(name) for name in config["task_names"]]
    return model, metadata, declared_length


def _in_float32(model: nn.Module, where: str) -> tuple[nn.Module, str]:
    """The model with float32 parameters and buffers (one-hot input and DeepLIFT run in float32), and the
    types it had instead (empty where it had none)."""
    tensors = [*model.parameters(), *model.buffers()]
    others = ", ".join(sorted({str(tensor.dtype) for tensor in tensors if tensor.is_floating_point()}
                              - {"torch.float32"}))
    if not others:
        return model, others
    log.warning("%s: the model's parameters are %s; it is run in float32 (model.float())", where, others)
    return model.float(), others


# torch's words for operands of two floating point types.
_DTYPE_MISMATCH = re.compile(r"dtype|expected scalar type|type \((double|float|half|c10::Half|c10::BFloat16|"
                             r"BFloat16|torch\.\w*Tensor)\)", re.IGNORECASE)


# Sequences of the batch a loaded model is first run on: a number a TorchScript trace is unlikely to have fixed as
# its example's batch size (1, 2, a power of two).
DUMMY_BATCH = 3


def _dummy_batch(input_length: int, device: torch.device) -> torch.Tensor:
    bases = torch.randint(0, len(ALPHABET), (DUMMY_BATCH, input_length), generator=torch.Generator().manual_seed(0))
    return nn.functional.one_hot(bases, len(ALPHABET)).permute(0, 2, 1).float().to(device)


def _token_hint(model: nn.Module) -> str:
    """A way out for a model that embeds token ids, naming its first embedding; empty for other models."""
    for name, module in model.named_modules():
        kind = module.original_name if isinstance(module, torch.jit.ScriptModule) else type(module).__name__
        if kind == "Embedding":
            return (f". The model embeds integer tokens ({kind} '{name}'): put genomatt.models.one_hot_embedding("
                    f"model.{name}, token_ids=[<ids of A, C, G, T>]) in its place so that it takes one-hot DNA "
                    "(docs/models.md, 'Models that take tokens')")
    return ""


def _other_inputs_hint(model: nn.Module) -> str:
    """Where the model's forward takes inputs beside the sequence, a clause naming them: genomatt passes the one-hot
    sequence alone. Inputs without a default are named as needed; one or two with a default (bpnet-lite's BPNet
    with control tracks, ``X_ctl=None``) as possibly needed; a longer list of options is no such input."""
    if isinstance(model, torch.jit.ScriptModule):
        return ""
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return ""
    positional = [parameter for parameter in parameters
                  if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)]
    required = [parameter.name for parameter in positional if parameter.default is parameter.empty]
    way_out = ("wrap it in a module whose forward takes the one-hot sequence alone and passes them (e.g. a control "
               "track of zeros)")
    if required:
        return (f". Its forward needs inputs beside the sequence ({', '.join(required)}), which genomatt does not "
                f"give: {way_out}")
    if 0 < len(positional) <= 2:
        return (f". Its forward also takes {', '.join(map(str, positional))}, which genomatt leaves at "
                f"{'its default' if len(positional) == 1 else 'their defaults'}; if the model needs them, {way_out}")
    return ""


def _check_on_dummy_batch(
    model: nn.Module, input_length: int, device: torch.device, where: str, converted: str = ""
) -> list[tuple[int, ...]]:
    """Run the model on a random one-hot ``(DUMMY_BATCH, 4, L)`` batch; return the per-sequence output shapes.
    ``converted`` names the types the model's parameters had before :func:`_in_float32`, if any."""
    try:
        with torch.no_grad():
            output = model(_dummy_batch(input_length, device))
    except Exception as error:  # any failure here means the model does not take our input
        # TorchScript errors carry the interpreter's traceback; its last line is the error itself.
        detail = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        if converted and _DTYPE_MISMATCH.search(detail):
            traced = ("; a TorchScript trace keeps the types of the example it was traced on, so trace the model in "
                      "float32 (model.float() before torch.jit.trace) or script it")
            way_out = "cast them to the type of its parameters instead (x.to(self.<layer>.weight.dtype))" + (
                traced if isinstance(model, torch.jit.ScriptModule) else "")
            raise ModelError(
                f"{where}: the model fails once run in float32, as genomatt runs models (its parameters were "
                f"{converted}): {detail}. Its forward casts values to a type of its own (e.g. x.double()); "
                f"{way_out}"
            ) from None
        traced = (", and, for a TorchScript trace, that it does not keep its example's batch size (traced from "
                  "code reading x.shape[0] or reshaping to a fixed batch; script it, or trace code using -1)"
                  if isinstance(model, torch.jit.ScriptModule) else "")
        raise ModelError(
            f"{where}: the model fails on one-hot input of shape ({DUMMY_BATCH}, 4, {input_length}) — batch, 4 "
            f"channels A/C/G/T, {input_length} bp as in the data ({detail}). Check the input length the model "
            f"expects and that it takes channels before length{traced}{_token_hint(model)}{_other_inputs_hint(model)}"
        ) from None
    if isinstance(output, dict):
        raise ModelError(f"{where}: the model returns a dict (keys {list(output)[:8]}); genomatt explains a tensor "
                         "or a tuple of tensors: wrap it in a module whose forward returns the outputs to explain "
                         "as a tuple, in a fixed order")
    outputs = output if isinstance(output, (tuple, list)) else (output,)
    shapes = []
    for index, tensor in enumerate(outputs):
        if not isinstance(tensor, torch.Tensor) or tensor.ndim == 0 or tensor.shape[0] != DUMMY_BATCH:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ModelError(
                f"{where}: output {index} on a batch of {DUMMY_BATCH} sequences is {shape}; expected tensors with "
                "the batch as first dimension"
            )
        if tensor.numel() == 0:
            raise ModelError(f"{where}: output {index} is empty at {input_length} bp (shape {tuple(tensor.shape[1:])} "
                             "per sequence): the model's layers take more than they leave of a window this short "
                             "(e.g. unpadded convolutions or a cropped profile); give a wider window, or the width "
                             "the model was built for")
        if not torch.isfinite(tensor).all():
            raise ModelError(f"{where}: output {index} holds NaN or infinite values on a random one-hot batch")
        shapes.append(tuple(tensor.shape[1:]))
    return shapes


def squeezed_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A per-sequence output shape without its trailing axes of length 1: ``(T, 1)``, as gReLU models
    return, is ``(T,)``."""
    while len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _task_names(shapes: list[tuple[int, ...]], declared: list[str] | None, where: str) -> list[str]:
    if not explains_columns(shapes, declared):
        return list(declared or [])
    # (N, T, 1), as gReLU models return, is T tasks like (N, T).
    shape = squeezed_shape(shapes[0])
    n_outputs = shape[0] if shape else 1
    if declared is None:
        return [f"task_{index}" for index in range(n_outputs)]
    if len(declared) != n_outputs:
        raise ModelError(f"{where}: {len(declared)} task names {declared} for a model with {n_outputs} outputs")
    return _unique(declared, where)


def _unique(names: list[str], where: str) -> list[str]:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ModelError(f"{where}: task names must be unique, and {', '.join(map(repr, repeated))} is given "
                         f"more than once ({names})")
    return names


def _resolve_length(declared: int | None, requested: int | None, where: str) -> int:
    if declared is not None and requested is not None and declared != requested:
        raise ModelError(
            f"{where}: the model expects input length {declared} bp but the data has {requested} bp; "
            f"use regions of width {declared}"
        )
    length = requested if requested is not None else declared
    if length is None:
        raise ModelError(
            f"{where}: the model does not declare its input length; give the width of your regions in bp (--width, "
            "or input_length in Python)"
        )
    if length <= 0:
        raise ModelError(f"{where}: input length must be a positive number of bp, got {length}")
    return int(length)


def load(
    spec: str | os.PathLike,
    weights: str | os.PathLike | None = None,
    input_length: int | None = None,
    device: str | torch.device | None = None,
) -> LoadedModel:
    """Load a model for explanation and check that it takes genomatt's one-hot input.

    Parameters
    ----------
    spec
        One of: a genomatt artefact (``genomatt train``); any TorchScript file; a model config
        (``.yaml``/``.yml``/``.json``) with ``architecture:`` and its parameters, or ``factory:`` and
        ``kwargs:``, plus ``weights:`` (relative to the config) and optional ``task_names:``; or an
        import spec ``package.module:factory`` naming a function or class that returns the model.
    weights
        State dict file (``torch.save(model.state_dict(), path)``) for a config or import spec.
    input_length
        Width of the data in bp. Required for models that do not declare their length (TorchScript,
        import specs); checked against the declared length otherwise.
    device
        Where to put the model; the GPU when there is one, else the CPU, by default.

    Returns
    -------
    LoadedModel
        The model in eval mode with task names, input length, content hash and metadata.

    Raises
    ------
    ModelError
        If the file is missing or unreadable, the weights do not fit, or the model fails on a dummy
        one-hot batch ``(3, 4, input_length)``, naming what the model expects and what the data has.
    """
    device = resolve_device(device)
    path = Path(spec)
    weights = Path(weights) if weights is not None else None
    declared_length = None
    if path.is_file() and path.suffix.lower() in CONFIG_SUFFIXES:
        model, metadata, declared_length = _load_config(path, weights)
        source = "config"
    elif path.is_file():
        if weights is not None:
            raise ModelError(f"{path}: weights (a sample's weights:, --weights) go with a model config or an import "
                             "spec, not with a model file, which holds its own")
        model, source, metadata = _load_file(path, device)
        declared_length = metadata.get("input_length")
    elif isinstance(spec, str) and _IMPORT_SPEC.match(spec):
        model = _build_from_factory(spec, {})
        if weights is not None:
            _load_weights(model, weights, spec)
        metadata = {"factory": spec, "weights": str(weights) if weights else None}
        source = "import"
    else:
        raise ModelError(
            f"{spec}: no such model file (and not an import spec of the form package.module:factory)"
            if not path.exists()
            else f"{spec}: is not a file"
        )
    where = str(spec)
    length = _resolve_length(declared_length, input_length, where)
    model, converted = _in_float32(model.to(device).eval(), where)
    shapes = _check_on_dummy_batch(model, length, device, where, converted)
    task_names = _task_names(shapes, metadata.get("task_names"), where)
    return LoadedModel(
        model=model,
        task_names=task_names,
        input_length=length,
        content_hash=content_hash(model),
        source=source,
        output_shapes=shapes,
        metadata=metadata,
    )


def explains_columns(output_shapes: Sequence[tuple[int, ...]], task_names: Sequence[str] | None = None) -> bool:
    """Whether a model with these per-sequence output shapes returns one value per task, ``(N, T)`` (or
    ``(N, T, 1)``), explained column by column; else its outputs are heads or tracks
    (:func:`genomatt.attribution.targets.head_targets`). An ``(N, L, 1)`` model given one task name returns
    one track of L positions (positions first, as Basenji's), not L tasks."""
    if len(output_shapes) != 1:
        return False
    shape = tuple(output_shapes[0])
    one_track = task_names is not None and len(task_names) == 1 and len(shape) == 2 and shape[0] > 1 == shape[1]
    return len(squeezed_shape(shape)) <= 1 and not one_track


def name_tasks(loaded: LoadedModel, task_names: Sequence[str], where: str) -> LoadedModel:
    """The loaded model with its output columns named ``task_names`` (for models that name none).

    Parameters
    ----------
    loaded
        A model from :func:`load` returning ``(N, T)``.
    task_names
        One name per output column, in column order.
    where
        The model as the user gave it, for messages.

    Returns
    -------
    LoadedModel
        A copy of ``loaded`` with these task names.

    Raises
    ------
    ModelError
        If the model does not return ``(N, T)``, the number of names is not T or they repeat a name, or the
        model declares other task names itself.
    """
    names = [str(name) for name in task_names]
    if not loaded.task_names:
        raise ModelError(f"{where}: task names {names} given, but the model returns outputs of shapes "
                         f"{loaded.output_shapes}, not one (N, T) score per task")
    if len(names) != len(loaded.task_names):
        raise ModelError(f"{where}: {len(names)} task names {names} given for a model with {len(loaded.task_names)} "
                         "outputs")
    refuse_other_task_names(loaded, names, where)
    return replace(loaded, task_names=_unique(names, where))


def refuse_other_task_names(loaded: LoadedModel, task_names: Sequence[str], where: str) -> None:
    """Refuse ``task_names`` other than the names the model declares itself (a model config's, a genomatt model's),
    whatever its outputs; ``where`` names the model in the message.

    Raises
    ------
    ModelError
        If the model declares task names and these are others.
    """
    declared = loaded.metadata.get("task_names")
    if declared is not None and [str(name) for name in declared] != [str(name) for name in task_names]:
        raise ModelError(f"{where}: the model names its tasks {list(declared)}, not {list(task_names)}; give no task "
                         "names (or the model's)")
