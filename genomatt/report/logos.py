"""Sequence logos (logomaker): motif CWMs, PWMs in bits, and region contributions with their hits.

Matrices are ``(4, W)`` in A, C, G, T order. Figures are plain matplotlib ``Figure`` objects (no
pyplot), so no display or global backend is involved.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import logomaker
import numpy as np
import pandas as pd
from logomaker.src.colors import get_color_dict
import matplotlib
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

from genomatt import ALPHABET
from genomatt.atomic import atomic_path, safe_file_name
from genomatt.motifs.cwm_motifs import logo_heights
from genomatt.motifs.formats import reverse_complement_matrix
from genomatt.motifs.trimming import MATCH_TRIM_FRACTION, trim_bounds

# Logo kinds of a motif: file suffix → (caption, y-axis label).
MOTIF_LOGO_KINDS = {
    "cwm": ("CWM", "contribution"),
    "cwm_reverse": ("CWM, reverse complement", "contribution"),
    "pwm": ("PWM", "bits"),
    "hypothetical_cwm": ("hypothetical CWM", "hyp. contribution"),
}
FORMATS = ("png", "svg")
PNG_DPI = 110
GLYPH_WIDTH = 0.95  # logomaker's default letter width, in positions
HIT_COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f", "#854d0e",
               "#475569"]


PLAIN_TEXT = matplotlib.rc_context({"text.parse_math": False})
"""Figures drawn under this take names as they are: ``$`` in a task or motif name is no mathtext."""


def _frame(matrix: np.ndarray) -> pd.DataFrame:
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != 4:
        raise ValueError(f"expected a (4, W) matrix, got shape {matrix.shape}")
    return pd.DataFrame(matrix.T, columns=list(ALPHABET))


def _style(ax, ylabel: str) -> None:
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


@PLAIN_TEXT
def logo_figure(matrix: np.ndarray, ylabel: str, title: str | None = None) -> Figure:
    """A logo of a ``(4, W)`` matrix (positive letters up, negative down), sized to its width."""
    width = matrix.shape[1]
    figure = Figure(figsize=(max(2.0, 0.2 * width + 0.8), 1.5))
    ax = figure.subplots()
    logomaker.Logo(_frame(matrix), ax=ax, color_scheme="classic", flip_below=False)
    ax.axhline(0, color="#94a3b8", linewidth=0.5)
    ax.set_xticks([])
    _style(ax, ylabel)
    if title:
        ax.set_title(title, fontsize=8)
    figure.tight_layout(pad=0.3)
    return figure


# Columns drawn on each side of a motif's span in its logos.
LOGO_FLANK = 5


def logo_span(cwm: np.ndarray, flank: int = LOGO_FLANK) -> tuple[int, int]:
    """Columns ``[start, end)`` of a motif's logos: the span matched against known motifs (columns whose
    summed |CWM| is at least ``MATCH_TRIM_FRACTION`` of the largest) and ``flank`` columns each side."""
    start, end = trim_bounds(np.asarray(cwm, dtype=float), MATCH_TRIM_FRACTION)
    return max(start - flank, 0), min(end + flank, cwm.shape[1])


def motif_logo_matrices(cwm: np.ndarray, pwm: np.ndarray | None = None,
                        hypothetical_cwm: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The matrices of every logo kind available for a motif (see :data:`MOTIF_LOGO_KINDS`).

    ``pwm`` (base frequencies) is drawn as information content in bits.
    """
    matrices = {"cwm": np.asarray(cwm, dtype=float), "cwm_reverse": reverse_complement_matrix(cwm)}
    if pwm is not None:
        matrices["pwm"] = logo_heights(pwm)
    if hypothetical_cwm is not None:
        matrices["hypothetical_cwm"] = np.asarray(hypothetical_cwm, dtype=float)
    return matrices


def figure_bytes(figure: Figure, fmt: str) -> bytes:
    """The figure rendered as PNG or SVG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=PNG_DPI if fmt == "png" else None)
    return buffer.getvalue()


def write_figure(figure: Figure, stem: str | os.PathLike) -> dict[str, Path]:
    """Write a figure as ``<stem>.png`` and ``<stem>.svg``, atomically."""
    written = {}
    for fmt in FORMATS:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=PNG_DPI if fmt == "png" else None)
        written[fmt] = path
    return written


@PLAIN_TEXT
def write_motif_logos(name: str, matrices: dict[str, np.ndarray], out_dir: str | os.PathLike) -> dict[str, dict]:
    """Write each logo of a motif as ``<out_dir>/<name>.<kind>.png`` and ``.svg``, the name made a file name.

    Parameters
    ----------
    name
        Motif name (in file names as :func:`~genomatt.atomic.safe_file_name` makes it).
    matrices
        Kind → ``(4, W)`` matrix, as from :func:`motif_logo_matrices`.
    out_dir
        Output folder (created).

    Returns
    -------
    dict
        Kind → ``{"png": path, "svg": path}``.
    """
    written = {}
    for kind, matrix in matrices.items():
        _, ylabel = MOTIF_LOGO_KINDS[kind]
        written[kind] = write_figure(logo_figure(matrix, ylabel), Path(out_dir) / f"{safe_file_name(name)}.{kind}")
    return written


@functools.cache
def _letter_path(base: str) -> MplPath:
    """Outline of a bold letter, scaled to the unit square (as logomaker's glyphs are drawn)."""
    path = TextPath((0, 0), base, size=1, prop=FontProperties(family="sans", weight="bold"))
    box = path.get_extents()
    return Affine2D().translate(-box.x0, -box.y0).scale(1 / box.width, 1 / box.height).transform_path(path)


def _contribution_logo(ax, contrib: np.ndarray) -> None:
    """Letters of the bases present, scaled to their contribution (up if positive, down if negative).

    Projected contributions have one non-zero base per position, so only those letters are drawn,
    from outlines made once per letter; ``logomaker.Logo`` makes four glyphs per position from scratch,
    too slow for long regions. Colours and letter widths are logomaker's.
    """
    colours = get_color_dict("classic", ALPHABET)
    paths, faces = [], []
    for position, channel in zip(*np.nonzero(contrib.T)):
        height = float(contrib[channel, position])
        place = Affine2D().scale(GLYPH_WIDTH, height).translate(position - GLYPH_WIDTH / 2, 0)
        paths.append(place.transform_path(_letter_path(ALPHABET[channel])))
        faces.append(colours[ALPHABET[channel]])
    ax.add_collection(PathCollection(paths, facecolors=faces, linewidths=0))
    low, high = min(float(contrib.min()), 0.0), max(float(contrib.max()), 0.0)
    margin = 0.05 * (high - low) if high > low else 1.0
    ax.set_xlim(-0.5, contrib.shape[1] - 0.5)
    ax.set_ylim(low - margin, high + margin)


def _lanes(hits: pd.DataFrame) -> list[int]:
    """Stack overlapping hits into lanes: each hit takes the first lane free at its start."""
    lane_ends: list[int] = []
    lanes = []
    for start, end in zip(hits["offset"], hits["offset_end"]):
        for lane, lane_end in enumerate(lane_ends):
            if lane_end <= start:
                lane_ends[lane] = end
                lanes.append(lane)
                break
        else:
            lane_ends.append(end)
            lanes.append(len(lane_ends) - 1)
    return lanes


@PLAIN_TEXT
def region_figure(contrib: np.ndarray, hits: pd.DataFrame, colours: dict[str, str], title: str,
                  first_base: int = 0) -> Figure:
    """Contribution logo of a region with its hits drawn as labelled bars beneath.

    Parameters
    ----------
    contrib
        ``(4, L)`` projected contributions of the stretch to draw.
    hits
        Hits in the stretch: ``offset``, ``offset_end`` (relative to the stretch), ``motif_name``,
        ``strand``.
    colours
        Motif name → colour of its bars.
    title
        Figure title (e.g. region name and coordinates).
    first_base
        Genome position of the stretch's first base, for the x-axis labels (1-based, as a genome browser
        numbers bases).
    """
    length = contrib.shape[1]
    hits = hits.sort_values("offset")
    lanes = _lanes(hits) if len(hits) else []
    n_lanes = max(lanes, default=-1) + 1
    figure = Figure(figsize=(min(16.0, max(6.0, 0.075 * length)), 2.2 + 0.3 * max(n_lanes, 1)))
    logo_ax, hit_ax = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, max(n_lanes, 1) * 0.5]})
    _contribution_logo(logo_ax, contrib)
    logo_ax.axhline(0, color="#94a3b8", linewidth=0.5)
    _style(logo_ax, "contribution")
    logo_ax.set_title(title, fontsize=9, loc="left")
    for (_, hit), lane in zip(hits.iterrows(), lanes):
        colour = colours.get(hit["motif_name"], "#475569")
        y = n_lanes - 1 - lane
        hit_ax.add_patch(Rectangle((hit["offset"] - 0.5, y + 0.15), hit["offset_end"] - hit["offset"], 0.7,
                                   color=colour, alpha=0.85, linewidth=0))
        hit_ax.text(hit["offset_end"] - 0.5 + 0.6, y + 0.5, f"{hit['motif_name']} ({hit['strand']})", fontsize=7,
                    va="center", ha="left", color=colour, clip_on=True)
    hit_ax.set_ylim(0, max(n_lanes, 1))
    hit_ax.set_yticks([])
    hit_ax.set_xlim(-0.5, length - 0.5)
    for side in ("top", "right", "left"):
        hit_ax.spines[side].set_visible(False)
    ticks = np.linspace(0, length - 1, 5).round().astype(int)
    hit_ax.set_xticks(ticks)
    hit_ax.set_xticklabels([f"{first_base + tick:,}" for tick in ticks], fontsize=7)
    if not len(hits):
        hit_ax.text(length / 2, 0.5, "no hits", ha="center", va="center", fontsize=7, color="#64748b")
    figure.tight_layout(pad=0.4)
    return figure
