"""Fused CPU kernels for the DeepLIFT rules (numba), one pass over memory each.

On a CPU the rules are bound by memory traffic, not arithmetic: written with torch operations the
Rescale multiplier takes six passes over an activation tensor and the cross-max rule a dozen over
its output, each allocating a fresh tensor. These kernels compute the same numbers in one pass
each; :mod:`genomatt.attribution.rules` uses them for float32/float64 CPU tensors and the torch
operations everywhere else (GPU, half precision). Every pair row is written by one thread, so the
parallel loops never race.

Arrays follow the batch layout of :mod:`genomatt.attribution.rules`: ``b`` sequence rows, then
``r`` reference rows per sequence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numba
import numpy as np
import torch
from torch import Tensor


def usable(*tensors: Tensor) -> bool:
    """Whether the fused kernels apply: CPU tensors of float32, float64 or int64."""
    return all(
        tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.float64, torch.int64)
        for tensor in tensors
    )


def _array(tensor: Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


@contextlib.contextmanager
def _threads() -> Iterator[None]:
    """Run numba kernels on the threads torch was given (e.g. by a workflow job), not every core.

    numba's OpenMP layer sets the OpenMP thread count it shares with torch when it starts, so torch's
    count is put back afterwards.
    """
    torch_threads = torch.get_num_threads()
    numba.set_num_threads(max(1, min(torch_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)


# --- Rescale ------------------------------------------------------------------------------------


@numba.njit(parallel=True, cache=True)
def _rescale_kernel(z_in, out_in, slope_in, z_ref, out_ref, multiplier, fallback, have_slope):
    b, r, size = z_ref.shape
    n_fallback = 0
    for row in numba.prange(b * r):
        i, k = row // r, row % r
        for s in range(size):
            delta_in = z_in[i, s] - z_ref[i, k, s]
            magnitude = min(1.0, max(abs(z_in[i, s]), abs(z_ref[i, k, s])))
            # Equal inputs have no difference, infinite ones too (a mask of -inf at both).
            if z_in[i, s] == z_ref[i, k, s] or abs(delta_in) <= fallback * magnitude:
                multiplier[i, k, s] = slope_in[i, s] if have_slope else 0.0
                n_fallback += 1
            else:
                multiplier[i, k, s] = (out_in[i, s] - out_ref[i, k, s]) / delta_in
    return n_fallback


def rescale_multiplier(z_in: Tensor, z_ref: Tensor, out_in: Tensor, out_ref: Tensor,
                       slope_in: Callable[[], Tensor], fallback: float) -> Tensor:
    """Fused :func:`genomatt.attribution.rules.rescale_multiplier`.

    ``slope_in`` returns the derivative at the sequences; it is called only if some difference is
    below ``fallback`` times min(1, the pair's larger |input|), which is rare and costs an autograd pass.
    """
    b, size = z_in.shape[0], z_in[0].numel()
    multiplier = torch.empty(z_ref.shape, dtype=z_ref.dtype)
    sequences = (_array(z_in).reshape(b, size), _array(out_in).reshape(b, size))
    references = (_array(z_ref).reshape(b, -1, size), _array(out_ref).reshape(b, -1, size))
    out = multiplier.numpy().reshape(b, -1, size)
    with _threads():
        needs_slope = _rescale_kernel(*sequences, sequences[0], *references, out, fallback, False)
    if needs_slope:
        slope = _array(slope_in()).reshape(b, size)
        with _threads():
            _rescale_kernel(*sequences, slope, *references, out, fallback, True)
    return multiplier


@numba.njit(parallel=True, cache=True)
def _relu_kernel(z, out, multiplier, b, fallback):
    r = multiplier.shape[0] // b
    size = z.shape[1]
    for i in numba.prange(b):
        for s in range(size):
            value = z[i, s]
            out[i, s] = 0.0 if value <= 0 else value
    for row in numba.prange(b * r):
        i = row // r
        for s in range(size):
            value = z[b + row, s]
            out[b + row, s] = 0.0 if value <= 0 else value
            # Read back in the array's dtype, so the arithmetic is that of the torch rule.
            delta_in = z[i, s] - value
            if abs(delta_in) < fallback:
                multiplier[row, s] = 1.0 if z[i, s] > 0 else 0.0
            else:
                multiplier[row, s] = (out[i, s] - out[b + row, s]) / delta_in


def relu_rescale(z: Tensor, n_sequences: int, fallback: float) -> tuple[Tensor, Tensor]:
    """ReLU of a whole batch and the Rescale multipliers of its pairs, in one pass.

    Returns
    -------
    out : Tensor, shape of ``z``
    multiplier : Tensor, shape (b * r, *S)
    """
    out = torch.empty(z.shape, dtype=z.dtype)
    multiplier = torch.empty(z.shape[0] - n_sequences, *z.shape[1:], dtype=z.dtype)
    rows = z.shape[0]
    with _threads():
        _relu_kernel(_array(z).reshape(rows, -1), out.numpy().reshape(rows, -1),
                     multiplier.numpy().reshape(rows - n_sequences, -1), n_sequences, fallback)
    return out, multiplier


# --- cross-max ----------------------------------------------------------------------------------


@numba.njit(parallel=True, cache=True)
def _cross_max_kernel(inputs_in, values_in, index_in, inputs_ref, values_ref, index_ref,
                      coefficient_in, coefficient_ref):
    b, r, channels, windows = values_ref.shape
    for row in numba.prange(b * r):
        i, k = row // r, row % r
        for m in range(channels):
            for w in range(windows):
                value_in = values_in[i, m, w]
                value_ref = values_ref[i, k, m, w]
                top = max(value_in, value_ref)
                delta_at_in = value_in - inputs_ref[i, k, m, index_in[i, m, w]]
                delta_at_ref = inputs_in[i, m, index_ref[i, k, m, w]] - value_ref
                coefficient_in[i, k, m, w] = 1.0 if delta_at_in == 0 else (top - value_ref) / delta_at_in
                coefficient_ref[i, k, m, w] = 0.0 if delta_at_ref == 0 else (value_in - top) / delta_at_ref


def cross_max_coefficients(inputs_in: Tensor, values_in: Tensor, index_in: Tensor, inputs_ref: Tensor,
                           values_ref: Tensor, index_ref: Tensor) -> tuple[Tensor, Tensor]:
    """Credit over difference at the sequence's and at the reference's argmax of every window.

    Parameters
    ----------
    inputs_in : Tensor, shape (b, M, S)
    values_in, index_in : Tensor, shape (b, M, So)
    inputs_ref : Tensor, shape (b, r, M, S)
    values_ref, index_ref : Tensor, shape (b, r, M, So)

    Returns
    -------
    coefficient_in, coefficient_ref : Tensor, shape (b, r, M, So)
    """
    coefficient_in = torch.empty(values_ref.shape, dtype=values_ref.dtype)
    coefficient_ref = torch.empty(values_ref.shape, dtype=values_ref.dtype)
    with _threads():
        _cross_max_kernel(_array(inputs_in), _array(values_in), _array(index_in), _array(inputs_ref),
                          _array(values_ref), _array(index_ref), coefficient_in.numpy(), coefficient_ref.numpy())
    return coefficient_in, coefficient_ref


def pooled_length(length: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """Output length of a 1-D max pool, as torch computes it."""
    span = length + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    windows = span // stride + 1
    if ceil_mode and (windows - 1) * stride >= length + padding:
        windows -= 1
    return windows


@numba.njit(inline="always")
def _window_max(z, row, channel, start, kernel, dilation, length):
    """Max and first argmax of one window (NaN wins, as in torch); -inf if the window is empty."""
    best = -np.inf
    best_index = -1
    for j in range(kernel):
        position = start + j * dilation
        if 0 <= position < length:
            value = z[row, channel, position]
            if best_index < 0:
                best_index = position
            if value > best or np.isnan(value):
                best = value
                best_index = position
    return best, best_index


@numba.njit(parallel=True, cache=True)
def _max_pool1d_kernel(z, out, index, coefficient_in, coefficient_ref, b, kernel, stride, padding, dilation):
    channels, length = z.shape[1], z.shape[2]
    windows = out.shape[2]
    r = coefficient_in.shape[1]
    for i in numba.prange(b):
        for m in range(channels):
            for w in range(windows):
                out[i, m, w], index[i, m, w] = _window_max(z, i, m, w * stride - padding, kernel, dilation, length)
    for pair in numba.prange(b * r):
        i, k = pair // r, pair % r
        row = b + pair
        for m in range(channels):
            for w in range(windows):
                out[row, m, w], index[row, m, w] = _window_max(z, row, m, w * stride - padding, kernel, dilation,
                                                               length)
                # Read back in the array's dtype, so the arithmetic is that of the torch rule.
                value_ref, index_ref = out[row, m, w], index[row, m, w]
                value_in, index_in = out[i, m, w], index[i, m, w]
                top = max(value_in, value_ref)
                delta_at_in = value_in - z[row, m, index_in]
                delta_at_ref = z[i, m, index_ref] - value_ref
                coefficient_in[i, k, m, w] = 1.0 if delta_at_in == 0 else (top - value_ref) / delta_at_in
                coefficient_ref[i, k, m, w] = 0.0 if delta_at_ref == 0 else (value_in - top) / delta_at_ref


def max_pool1d_cross_max(z: Tensor, n_sequences: int, kernel: int, stride: int, padding: int, dilation: int,
                         ceil_mode: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """1-D max pooling of a whole batch with its cross-max coefficients, in one pass.

    Parameters
    ----------
    z : Tensor, shape (b + b * r, C, L)
        The ``b`` sequences' rows, then their ``r`` references each.
    n_sequences : int
        ``b``.
    kernel, stride, padding, dilation, ceil_mode
        As ``torch.nn.functional.max_pool1d`` takes them.

    Returns
    -------
    out, index : Tensor, shape (b + b * r, C, Lo)
        What ``F.max_pool1d_with_indices`` returns.
    coefficient_in, coefficient_ref : Tensor, shape (b, r, C, Lo)
        As :func:`cross_max_coefficients`.
    """
    b = n_sequences
    rows, channels, length = z.shape
    windows = pooled_length(length, kernel, stride, padding, dilation, ceil_mode)
    out = torch.empty(rows, channels, windows, dtype=z.dtype)
    index = torch.empty(rows, channels, windows, dtype=torch.int64)
    coefficient_in = torch.empty(b, (rows - b) // b, channels, windows, dtype=z.dtype)
    coefficient_ref = torch.empty_like(coefficient_in)
    with _threads():
        _max_pool1d_kernel(_array(z), out.numpy(), index.numpy(), coefficient_in.numpy(), coefficient_ref.numpy(),
                           b, kernel, stride, padding, dilation)
    return out, index, coefficient_in, coefficient_ref


@numba.njit(parallel=True, cache=True)
def _shapley_max_kernel(inputs_in, inputs_ref, argmax_in, log_factorial, coefficient):
    b, r, channels, size = inputs_ref.shape
    for pair in numba.prange(b * r):
        i, k = pair // r, pair % r
        values = np.empty(2 * size)
        element = np.empty(2 * size, dtype=np.int64)
        position = np.empty(2 * size, dtype=np.int64)
        credit_a = np.empty(2 * size)
        credit_b = np.empty(2 * size)
        for m in range(channels):
            x, ref, out = inputs_in[i, m], inputs_ref[i, k, m], coefficient[i, k, m]
            floor = -np.inf
            for s in range(size):
                floor = max(floor, min(x[s], ref[s]))
            n = 0
            for s in range(size):
                out[s] = 0.0
                if max(x[s], ref[s]) > floor:
                    values[2 * n], values[2 * n + 1] = x[s], ref[s]
                    element[2 * n], element[2 * n + 1] = 2 * s, 2 * s + 1  # even: the sequence's value
                    n += 1
            j = argmax_in[i, m]
            if x[j] == ref[j]:
                out[j] = 1.0  # no difference: the gradient at the sequence
            if n == 0:
                continue
            order = np.argsort(-values[:2 * n])
            for p in range(2 * n):
                position[order[p]] = p
            a = 0
            bb = 0
            both = 0
            for p in range(2 * n):
                entry = order[p]
                if entry % 2 == 0:
                    a += 1
                else:
                    bb += 1
                if position[entry ^ 1] < p:
                    both += 1
                below = values[order[p + 1]] if p + 1 < 2 * n else floor
                width = values[entry] - max(below, floor)
                credit_a[p] = 0.0
                credit_b[p] = 0.0
                if both == 0 and width > 0:
                    total = log_factorial[a + bb]
                    if a > 0:
                        credit_a[p] = width * np.exp(log_factorial[bb] + log_factorial[a - 1] - total)
                    if bb > 0:
                        credit_b[p] = -width * np.exp(log_factorial[bb - 1] + log_factorial[a] - total)
            for p in range(2 * n - 2, -1, -1):  # suffix sums: each value collects the credits at or below it
                credit_a[p] += credit_a[p + 1]
                credit_b[p] += credit_b[p + 1]
            for q in range(n):
                s = element[2 * q] // 2
                phi = credit_a[position[2 * q]] + credit_b[position[2 * q + 1]]
                out[s] = phi / (np.float64(x[s]) - np.float64(ref[s]))


def shapley_max_coefficients(inputs_in: Tensor, inputs_ref: Tensor, argmax_in: Tensor) -> Tensor:
    """Multipliers of a max over the last axis under Max SHAP, one pass per (pair, row).

    Parameters
    ----------
    inputs_in : Tensor, shape (b, M, S)
        The sequences' values.
    inputs_ref : Tensor, shape (b, r, M, S)
        The references' values.
    argmax_in : Tensor, shape (b, M)
        The sequences' argmax.

    Returns
    -------
    Tensor, shape (b, r, M, S), the inputs' dtype
        Each position's Shapley value (:func:`genomatt.attribution.rules.max_shapley_values`, computed in
        float64) divided by its difference; where the difference is zero, 1 at the sequence's argmax and
        0 elsewhere.
    """
    size = inputs_ref.shape[-1]
    log_factorial = torch.lgamma(torch.arange(1, 2 * size + 2, dtype=torch.float64)).numpy()
    coefficient = torch.empty(inputs_ref.shape, dtype=inputs_ref.dtype)
    with _threads():
        _shapley_max_kernel(_array(inputs_in), _array(inputs_ref), _array(argmax_in), log_factorial,
                            coefficient.numpy())
    return coefficient


@numba.njit(parallel=True, cache=True)
def _route_kernel(grad, coefficient_in, index_in, coefficient_ref, index_ref, multiplier):
    b, r, channels, windows = grad.shape
    for row in numba.prange(b * r):
        i, k = row // r, row % r
        multiplier[i, k] = 0.0
        for m in range(channels):
            for w in range(windows):
                g = grad[i, k, m, w]
                multiplier[i, k, m, index_in[i, m, w]] += g * coefficient_in[i, k, m, w]
                multiplier[i, k, m, index_ref[i, k, m, w]] += g * coefficient_ref[i, k, m, w]


def route_cross_max(grad: Tensor, coefficient_in: Tensor, index_in: Tensor, coefficient_ref: Tensor,
                    index_ref: Tensor, out: Tensor) -> None:
    """Backward of the cross-max rule: each window's gradient, times its coefficients, to its argmaxes.

    Parameters
    ----------
    grad, coefficient_in, coefficient_ref, index_ref : Tensor, shape (b, r, M, So)
    index_in : Tensor, shape (b, M, So)
    out : Tensor, shape (b, r, M, S), contiguous
        Overwritten with the multipliers of the inputs.
    """
    with _threads():
        _route_kernel(_array(grad), _array(coefficient_in), _array(index_in), _array(coefficient_ref),
                      _array(index_ref), out.numpy())
