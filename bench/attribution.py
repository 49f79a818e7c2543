"""Benchmark genomatt's DeepLIFT/DeepSHAP engine against tangermeme, captum and the floor, in one run.

    .venv/bin/python bench/attribution.py [--sequences 16] [--references 20] [--repeats 3]

Two models of the field's shapes, with random weights: a BPNet-like dilated residual CNN (64
filters, 9 dilated layers, 1,000 bp, global-average count head) and a Basset-like CNN (300/200/200
filters, batch norm, max pooling 3/4/4, two dense layers of 1,000, 164 outputs, 600 bp). Every
method explains output 0 of the same sequences against the same 20 references per sequence and
returns hypothetical contributions:

* floor — one plain forward and input-gradient backward over the same (sequence × reference)
  inputs, in the same batches: what any gradient method costs;
* genomatt — ``genomatt.attribution.deep_lift_shap``;
* tangermeme — ``tangermeme.deep_lift_shap`` (its batches hold the sequence copies too);
* captum — ``captum.attr.DeepLiftShap``, one call per sequence with its references as baselines
  (captum takes one set of baselines per call, so it cannot batch sequences with their own
  references).

Methods run alternately, ``--repeats`` times after a warm-up, with torch's default threads, on
``--device`` (``cuda`` on a GPU machine); the table shows the best and median wall-clock seconds. The
agreement column is max |difference| from genomatt. ``--torch-rules`` adds genomatt with its rules as
torch operations (the GPU path) instead of the fused CPU kernels. ``--memory N1 N2 ...`` then measures genomatt's peak resident memory for several numbers
of sequences, each in a fresh process, to show that it does not grow with N.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from genomatt.attribution import deep_lift_shap, hypothetical_contributions, kernels
from genomatt.device import resolve_device


class BPNetLike(nn.Module):
    """BPNet body (21-wide stem, 9 dilated residual layers) with its count head."""

    def __init__(self, filters: int = 64, layers: int = 9):
        super().__init__()
        self.stem, self.stem_relu = nn.Conv1d(4, filters, 21, padding=10), nn.ReLU()
        self.convs = nn.ModuleList(
            nn.Conv1d(filters, filters, 3, padding=2**i, dilation=2**i) for i in range(1, layers + 1)
        )
        self.relus = nn.ModuleList(nn.ReLU() for _ in range(layers))
        self.count = nn.Linear(filters, 2)

    def forward(self, x):
        h = self.stem_relu(self.stem(x))
        for conv, relu in zip(self.convs, self.relus):
            h = h + relu(conv(h))
        return self.count(h.mean(-1))


class BassetLike(nn.Module):
    """Basset: three conv + batch norm + ReLU + max pool blocks, two dense layers, 164 outputs."""

    def __init__(self, length: int = 600):
        super().__init__()
        blocks = []
        for n_in, n_out, width, pool in ((4, 300, 19, 3), (300, 200, 11, 4), (200, 200, 7, 4)):
            blocks += [nn.Conv1d(n_in, n_out, width, padding=width // 2), nn.BatchNorm1d(n_out), nn.ReLU(),
                       nn.MaxPool1d(pool)]
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(200 * (length // 48), 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(),
            nn.Linear(1000, 164),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


MODELS = {"BPNet-like": (BPNetLike, 1000), "Basset-like": (BassetLike, 600)}


def build(name: str) -> nn.Module:
    """The model with random weights and (for batch norm) random running statistics."""
    torch.manual_seed(0)
    model_class, _ = MODELS[name]
    model = model_class()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.normal_(0, 0.3)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def data(name: str, n_sequences: int, n_references: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random one-hot sequences (N, 4, L) and references (N, R, 4, L)."""
    length = MODELS[name][1]
    rng = np.random.default_rng(1)
    eye = np.eye(4, dtype=np.float32)
    X = torch.from_numpy(eye[rng.integers(0, 4, (n_sequences, length))]).transpose(1, 2).contiguous()
    refs = torch.from_numpy(eye[rng.integers(0, 4, (n_sequences, n_references, length))]).transpose(2, 3).contiguous()
    return X, refs


def floor(model: nn.Module, X: torch.Tensor, refs: torch.Tensor, batch_size: int, device: str) -> torch.Tensor:
    """Forward + input-gradient backward over the (sequence × reference) inputs, no DeepLIFT."""
    inputs = refs.reshape(-1, *refs.shape[2:])
    gradients = []
    for start in range(0, inputs.shape[0], batch_size):
        batch = inputs[start:start + batch_size].to(device, copy=True).requires_grad_(True)
        (gradient,) = torch.autograd.grad(model(batch)[:, 0].sum(), batch)
        gradients.append(gradient.cpu())
    return torch.cat(gradients)


def genomatt(model: nn.Module, X: torch.Tensor, refs: torch.Tensor, batch_size: int, device: str) -> torch.Tensor:
    return deep_lift_shap(model, X, refs, target=0, hypothetical=True, batch_size=batch_size, device=device)


def genomatt_torch_rules(model: nn.Module, X: torch.Tensor, refs: torch.Tensor, batch_size: int,
                         device: str) -> torch.Tensor:
    """genomatt with the rules written as torch operations (the path GPUs take), no fused CPU kernels."""
    usable = kernels.usable
    kernels.usable = lambda *tensors: False
    try:
        return genomatt(model, X, refs, batch_size, device)
    finally:
        kernels.usable = usable


def tangermeme(model: nn.Module, X: torch.Tensor, refs: torch.Tensor, batch_size: int, device: str) -> torch.Tensor:
    from tangermeme.deep_lift_shap import deep_lift_shap as tangermeme_deep_lift_shap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tangermeme_deep_lift_shap(model, X, references=refs, target=0, hypothetical=True,
                                         batch_size=batch_size, device=device)


def captum(model: nn.Module, X: torch.Tensor, refs: torch.Tensor, batch_size: int, device: str) -> torch.Tensor:
    from captum.attr import DeepLiftShap

    def project(multipliers, inputs, baselines):
        return tuple(hypothetical_contributions(m, b) for m, b in zip(multipliers, baselines))

    explainer = DeepLiftShap(model.to(device))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.cat([
            explainer.attribute(X[i:i + 1].to(device), refs[i].to(device), target=0,
                                custom_attribution_func=project).detach().cpu()
            for i in range(X.shape[0])
        ])


METHODS: dict[str, Callable[..., torch.Tensor]] = {
    "floor (forward + input gradient)": floor,
    "genomatt deep_lift_shap": genomatt,
    "tangermeme deep_lift_shap": tangermeme,
    "captum DeepLiftShap": captum,
}
TORCH_RULES = "genomatt, rules as torch operations"


def time_methods(name: str, n_sequences: int, n_references: int, batch_size: int, repeats: int, device: str,
                 torch_rules: bool) -> list[dict]:
    model = build(name).to(device)
    X, refs = data(name, n_sequences, n_references)
    methods = dict(METHODS, **({TORCH_RULES: genomatt_torch_rules} if torch_rules else {}))
    results = {method: function(model, X, refs, batch_size, device) for method, function in methods.items()}
    seconds: dict[str, list[float]] = {method: [] for method in methods}
    for _ in range(repeats):
        for method, function in methods.items():
            start = time.perf_counter()
            function(model, X, refs, batch_size, device)
            seconds[method].append(time.perf_counter() - start)
    reference = results["genomatt deep_lift_shap"]
    rows = []
    for method in methods:
        agreement = None if method.startswith("floor") else float((results[method] - reference).abs().max())
        rows.append({"model": name, "method": method, "best": min(seconds[method]),
                     "median": statistics.median(seconds[method]), "agreement": agreement,
                     "pairs": n_sequences * n_references})
    return rows


def peak_memory(name: str, n_sequences: int, n_references: int, batch_size: int) -> dict:
    """Run genomatt in a fresh process; its peak RSS and the RSS before the call, in MiB."""
    command = [sys.executable, __file__, "--measure-memory", name, str(n_sequences), str(n_references),
               str(batch_size)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def _measure_memory(name: str, n_sequences: int, n_references: int, batch_size: int) -> None:
    model = build(name)
    X, refs = data(name, n_sequences, n_references)
    before = _status_kib("VmRSS")
    deep_lift_shap(model, X, refs, batch_size=batch_size, device="cpu")
    print(json.dumps({"before": before / 1024, "peak": _status_kib("VmHWM") / 1024,
                      "inputs": (X.numel() + refs.numel()) * 4 / 2**20}))


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS: now; VmHWM: peak of this process), in KiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=16)
    parser.add_argument("--references", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128, help="(sequence, reference) pairs per pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cpu", help="torch device of every method (default %(default)s)")
    parser.add_argument("--torch-rules", action="store_true",
                        help="also time genomatt with its rules as torch operations instead of CPU kernels")
    parser.add_argument("--memory", type=int, nargs="+", metavar="N", default=None,
                        help="also measure genomatt's peak memory for these numbers of sequences")
    parser.add_argument("--measure-memory", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_memory:
        name, *numbers = args.measure_memory
        _measure_memory(name, *map(int, numbers))
        return

    device = resolve_device(args.device)
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores{gpu}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), device {args.device}, load average {os.getloadavg()[0]:.1f} at start; "
          f"{args.sequences} sequences × {args.references} references, batches of {args.batch_size} pairs\n")
    for name in args.models:
        rows = time_methods(name, args.sequences, args.references, args.batch_size, args.repeats, args.device,
                            args.torch_rules)
        floor_seconds = rows[0]["best"]
        genomatt_seconds = rows[1]["best"]
        print(f"{name}\n")
        print("| method | best s | median s | pairs/s | × floor time | genomatt speed-up | max abs diff |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            agreement = "—" if row["agreement"] is None else f"{row['agreement']:.1e}"
            print(f"| {row['method']} | {row['best']:.2f} | {row['median']:.2f} | {row['pairs'] / row['best']:.1f} | "
                  f"{row['best'] / floor_seconds:.2f} | {row['best'] / genomatt_seconds:.2f} | {agreement} |")
        print()
    if args.memory:
        print("genomatt peak resident memory (VmHWM of a fresh process per row)\n")
        print("| model | sequences | pairs | inputs MiB | RSS before MiB | peak RSS MiB | increase MiB |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name in args.models:
            for n_sequences in args.memory:
                memory = peak_memory(name, n_sequences, args.references, args.batch_size)
                print(f"| {name} | {n_sequences} | {n_sequences * args.references} | {memory['inputs']:.1f} | "
                      f"{memory['before']:.0f} | {memory['peak']:.0f} | {memory['peak'] - memory['before']:.0f} |")


if __name__ == "__main__":
    main()
