"""De novo motif discovery with tfmodisco-lite, one discovery per task, in genome coordinates.

genomatt drives tfmodisco-lite through its Python API (``modiscolite.tfmodisco.TFMoDISco``) so that it
controls what tfmodisco-lite's command line does not: the discovery window is centred as tfmodisco-lite
and Fi-NeMo centre it but is exactly ``window`` bp for odd sizes too, clamped to the region length;
seqlet and pattern sizes shrink with short windows; regions are put in a seeded random order before
tfmodisco-lite keeps the first ``max_seqlets`` seqlets of each sign, so the cap is a random sample rather
than the first regions of the file; and numba's and the BLAS libraries' threads are bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genomatt.errors import MotifError
from genomatt.motifs.discovery_settings import DiscoverySettings
from genomatt.motifs.formats import Motif, normalise_columns, reverse_complement_matrix
from genomatt.motifs.seqlets import (
    CALLED_SEQLET_COLUMNS,
    MIN_WINDOW,
    SeqletGeometry,
    call_seqlets,
    check_tracks,
    seqlet_geometry,
    to_genome,
)
from genomatt.motifs.trimming import MATCH_TRIM_FRACTION, trim_bounds
from genomatt.shuffle import as_numpy
from genomatt.threads import bounded_threads

log = logging.getLogger(__name__)

SIGNS = ("pos", "neg")
# Fewest seqlets a motif keeps: tfmodisco-lite's own least pattern size (final_min_cluster_size), held also
# after genomatt's filters (typical seqlets, seqlet purity) take seqlets out of a pattern.
MIN_MOTIF_SEQLETS = 20

# Columns of the table of motif seqlets, in genome coordinates (0-based, half-open).
MOTIF_SEQLET_COLUMNS = ("motif", "task", "sign", "chrom", "start", "end", "strand", "region", "score",
                        "window_start", "window_end")

# A pattern is a composite of two motifs when their cores, side by side, explain this share of its CWM's
# energy (sum of squares), and each of them this share (see composite_of).
COMPOSITE_EXPLAINED = 0.7
COMPOSITE_EACH = 0.15
# A pattern with fewer than this share of another pattern's seqlets whose core explains VARIANT_EXPLAINED of
# its CWM's energy is a small variant of that motif (see variant_of).
SMALL_SHARE = 0.25
VARIANT_EXPLAINED = 0.5
# A pattern whose CWM the core of a pattern with more seqlets explains to this share is that motif again (one
# cluster split in two, e.g. by the strength of a flank), whatever their seqlet counts.
DUPLICATE_EXPLAINED = 0.9


@dataclass
class DiscoveredMotif:
    """A de novo motif: tfmodisco-lite pattern ``<sign>_patterns/pattern_<index>`` of one task.

    Attributes
    ----------
    name
        ``<task>.<sign>.<index>``; index 0 is the motif with most seqlets.
    task, sign
        The task whose contributions it came from and the sign of its contributions (``pos``/``neg``).
    cwm, hypothetical_cwm, pwm
        ``(4, W)`` float32: mean actual contribution, mean hypothetical contribution and base frequency
        of its seqlets, aligned on the motif's forward strand.
    n_seqlets
        Seqlets in the motif.
    trim_start, trim_end
        The core columns ``[trim_start, trim_end)`` (see :data:`genomatt.motifs.trimming.TRIM_FRACTION`).
    matches
        Best known-motif matches: dicts with ``id``, ``name``, ``p``, ``q``, best first.
    """

    name: str
    task: str
    sign: str
    cwm: np.ndarray
    hypothetical_cwm: np.ndarray
    pwm: np.ndarray
    n_seqlets: int
    trim_start: int
    trim_end: int
    matches: list[dict] = field(default_factory=list)

    @property
    def width(self) -> int:
        return int(self.cwm.shape[1])

    def trimmed_motif(self) -> Motif:
        """The letter-probability matrix for matching and MEME files: the base frequencies trimmed to
        ``MATCH_TRIM_FRACTION``, estimated with square-root pseudocounts (:func:`site_probabilities`)."""
        start, end = trim_bounds(self.cwm, MATCH_TRIM_FRACTION)
        trimmed = normalise_columns(self.pwm[:, start:end], f"motif {self.name}")
        return Motif(self.name, self.name, site_probabilities(trimmed, self.n_seqlets), sites=self.n_seqlets)


def site_probabilities(frequencies: np.ndarray, n_sites: int) -> np.ndarray:
    """Letter probabilities estimated from the base frequencies of ``n_sites`` aligned sites.

    ``(n_b + sqrt(N) / 4) / (N + sqrt(N))`` per column, for the counts ``n_b`` of base b among N sites: the
    square-root pseudocount spread over a uniform background (Wasserman & Sandelin 2004; the default of
    JASPAR's own conversion of counts to a matrix). A model's seqlets keep mostly the sites near a motif's
    consensus, so their columns are near 0 and 1 where the known matrices, counted from thousands of sites,
    are not; unsmoothed, TOMTOM's column distance counts that against the true match (docs/methods.md).

    Parameters
    ----------
    frequencies
        ``(4, W)`` base frequencies, columns summing to 1.
    n_sites
        Sites the frequencies were counted from; 0 returns the frequencies unchanged.

    Returns
    -------
    numpy.ndarray
        ``(4, W)`` probabilities, columns summing to 1.
    """
    frequencies = np.asarray(frequencies, dtype=float)
    if n_sites <= 0:
        return frequencies
    pseudocount = np.sqrt(n_sites)
    return (frequencies * n_sites + pseudocount / 4) / (n_sites + pseudocount)


@dataclass
class TaskDiscovery:
    """Everything one task's discovery produced.

    Attributes
    ----------
    task
        Task name.
    window_start, window_size
        The discovery window within each region (bp).
    geometry
        Seqlet and pattern sizes used.
    called_seqlets
        Seqlets called against the null, genome coordinates (``CALLED_SEQLET_COLUMNS``).
    motifs
        Discovered motifs, positive then negative, each by decreasing seqlet count.
    motif_seqlets
        Seqlets of the motifs, genome coordinates (``MOTIF_SEQLET_COLUMNS``).
    patterns
        tfmodisco-lite's patterns per sign (``pos``/``neg``), in motif order.
    region_order
        ``region_order[i]`` is the regions-table row of tfmodisco-lite's example ``i``.
    """

    task: str
    window_start: int
    window_size: int
    geometry: SeqletGeometry
    called_seqlets: pd.DataFrame
    motifs: list[DiscoveredMotif]
    motif_seqlets: pd.DataFrame
    patterns: dict[str, list]
    region_order: np.ndarray


def resolve_window(window: int | None, length: int) -> tuple[int, int]:
    """Start and width of the discovery window in regions of ``length`` bp.

    The window is centred as tfmodisco-lite and Fi-NeMo centre it (``start = length // 2 - window // 2``)
    and is exactly ``window`` bp wide, odd widths included. ``None`` gives the whole region; a window
    longer than the regions is clamped to their length, with a logged message.
    """
    if window is None:
        window = length
    if window > length:
        log.warning("window of %d bp is longer than the %d bp regions; using the whole regions", window, length)
        window = length
    if window < MIN_WINDOW:
        raise MotifError(f"window of {window} bp is too short for seqlets; give at least {MIN_WINDOW} bp")
    return length // 2 - window // 2, window


def motif_strength(cwm: np.ndarray) -> float:
    """Strength of a motif: the absolute sum of its ``(4, W)`` CWM, i.e. the contribution of its average seqlet.

    It is in the units of the contributions and does not depend on the width of the regions (a seqlet's
    contribution is the model's response to the site alone), so it compares motifs of one task at any width.
    """
    return float(abs(np.asarray(cwm, dtype=np.float64).sum()))


def _strong_patterns(patterns: dict[str, list], min_strength: float, task: str) -> dict[str, list]:
    """The patterns of each sign at least ``min_strength`` times as strong (:func:`motif_strength` of their
    CWM) as the task's strongest pattern, of either sign, in their order.

    Weak patterns of a task are mostly its regions' other sites, which the model responds to only a little
    in this task (at 1 kb most regions hold other factors' sites), and noise clustered into a pattern.
    """
    strengths = {sign: [motif_strength(pattern.contrib_scores) for pattern in patterns[sign]] for sign in SIGNS}
    strongest = max((value for values in strengths.values() for value in values), default=0.0)
    kept = {}
    for sign in SIGNS:
        kept[sign] = []
        for index, (pattern, strength) in enumerate(zip(patterns[sign], strengths[sign])):
            if strength >= min_strength * strongest:
                kept[sign].append(pattern)
            else:
                log.info("task %s: %s pattern %d (%d seqlets) dropped: strength %.3g is under %g of the task's "
                         "strongest motif (%.3g)", task, sign, index, len(pattern.seqlets), strength, min_strength,
                         strongest)
    return kept


# Window-relative motif seqlets as motif_seqlet_table makes them, before place maps them to the genome.
_WINDOW_SEQLET_DTYPES = {"example": np.int64, "motif": object, "task": object, "sign": object, "start": np.int64,
                         "end": np.int64, "strand": object, "score": np.float64, "window_start": np.int64,
                         "window_end": np.int64}


def core_bounds(seqlets: list, trim_start: int, trim_end: int) -> pd.DataFrame:
    """Each tfmodisco-lite seqlet's motif core ``[start, end)`` on its strand, window-relative.

    Column j of the motif is base ``start + j`` of a forward seqlet and base ``end - 1 - j`` of a reverse one.
    The table has ``example``, ``start``, ``end``, ``reverse`` and the seqlet's own ``window_start`` and
    ``window_end``, in the order of ``seqlets``.
    """
    starts = np.array([seqlet.start for seqlet in seqlets], dtype=np.int64)
    ends = np.array([seqlet.end for seqlet in seqlets], dtype=np.int64)
    reverse = np.array([bool(seqlet.is_revcomp) for seqlet in seqlets], dtype=bool)
    examples = np.array([seqlet.example_idx for seqlet in seqlets], dtype=np.int64)
    return pd.DataFrame({"example": examples, "start": np.where(reverse, ends - trim_end, starts + trim_start),
                         "end": np.where(reverse, ends - trim_start, starts + trim_end), "reverse": reverse,
                         "window_start": starts, "window_end": ends})


def _seqlet_cores(seqlets: list, trim_start: int, trim_end: int, contrib: np.ndarray) -> pd.DataFrame:
    """:func:`core_bounds` with each core's summed contribution (``score``) in ``contrib`` ``(N, 4, W)``."""
    cores = core_bounds(seqlets, trim_start, trim_end)
    scores = np.array([contrib[e, :, s:t].sum(dtype=np.float64)
                       for e, s, t in zip(cores["example"], cores["start"], cores["end"])], dtype=np.float64)
    return cores.assign(score=scores)


def motif_seqlet_table(cores: pd.DataFrame, motif: DiscoveredMotif) -> pd.DataFrame:
    """Window-relative table of a motif's seqlets from their cores (:func:`core_bounds` with a ``score`` column)."""
    return pd.DataFrame({
        "example": cores["example"], "motif": motif.name, "task": motif.task, "sign": motif.sign,
        "start": cores["start"], "end": cores["end"],
        "strand": np.where(cores["reverse"], "-", "+").astype(object), "score": cores["score"],
        "window_start": cores["window_start"], "window_end": cores["window_end"],
    })


def rebuild_pattern(pattern, keep: np.ndarray):
    """A tfmodisco-lite pattern rebuilt from the seqlets where ``keep`` is true, in their order.

    Its matrices are the means over the kept seqlets and its subpatterns keep their kept seqlets, so every
    output of the motif (CWM, PWM, seqlet tables, tfmodisco-lite file) describes the same seqlets.
    """
    from modiscolite.core import SeqletSet

    kept = [seqlet for seqlet, kept_one in zip(pattern.seqlets, keep) if kept_one]
    rebuilt = SeqletSet(kept)
    if pattern.subclusters is not None:
        strings = {seqlet.string for seqlet in kept}
        subpatterns = [(cluster, [seqlet for seqlet in subpattern.seqlets if seqlet.string in strings])
                       for cluster, subpattern in pattern.subcluster_to_subpattern.items()]
        rebuilt.subclusters = np.asarray(pattern.subclusters)[keep]
        rebuilt.subcluster_to_subpattern = {cluster: SeqletSet(seqlets) for cluster, seqlets in subpatterns
                                            if seqlets}
    return rebuilt


def pattern_motif(pattern, name: str, task: str, sign: str) -> DiscoveredMotif:
    """The :class:`DiscoveredMotif` of a tfmodisco-lite pattern: its matrices on the forward strand, its core."""
    cwm = pattern.contrib_scores.T.astype(np.float32)
    trim_start, trim_end = trim_bounds(cwm)
    return DiscoveredMotif(
        name=name, task=task, sign=sign, cwm=cwm, hypothetical_cwm=pattern.hypothetical_contribs.T.astype(np.float32),
        pwm=pattern.sequence.T.astype(np.float32), n_seqlets=len(pattern.seqlets),
        trim_start=trim_start, trim_end=trim_end,
    )


def _typical_seqlets(pattern, contrib: np.ndarray, min_share: float, sign: str, label: str):
    """The pattern rebuilt (:func:`rebuild_pattern`) from the seqlets whose core contributes at least
    ``min_share`` times as much as the pattern's median seqlet (both in the pattern's sign); the pattern itself
    when none is weaker."""
    if min_share <= 0 or not pattern.seqlets:
        return pattern
    trim_start, trim_end = trim_bounds(pattern.contrib_scores.T)
    scores = _seqlet_cores(pattern.seqlets, trim_start, trim_end, contrib)["score"].to_numpy()
    if sign == "neg":
        scores = -scores
    floor = min_share * float(np.median(scores))
    keep = scores >= floor
    if keep.all() or not keep.any():
        return pattern
    log.info("%s: %d of %d seqlets dropped: their cores contribute under %g of the median seqlet's (%.3g)", label,
             int((~keep).sum()), len(keep), min_share, floor / min_share)
    return rebuild_pattern(pattern, keep)


# More positions of exactly zero contribution inside the window than this share is warned of: tfmodisco-lite's
# seqlet null and similarities assume contributions almost everywhere.
MAX_SILENT_SHARE = 0.1


def supported(pattern, label: str) -> bool:
    """Whether a pattern keeps at least :data:`MIN_MOTIF_SEQLETS` seqlets; a logged line says why not."""
    if len(pattern.seqlets) >= MIN_MOTIF_SEQLETS:
        return True
    log.info("%s dropped: %d seqlets left, fewer than the %d a motif needs", label, len(pattern.seqlets),
             MIN_MOTIF_SEQLETS)
    return False


def place(table: pd.DataFrame, region_order: np.ndarray, regions: pd.DataFrame, window_start: int,
          columns: tuple[str, ...]) -> pd.DataFrame:
    """Map tfmodisco-lite example indices back to regions and place every interval in the genome."""
    table = table.assign(example=region_order[table["example"].to_numpy(np.int64)])
    placed = to_genome(table, regions, window_start)
    if "window_start" in table:
        offset = regions["start"].to_numpy(np.int64)[table["example"].to_numpy(np.int64)] + window_start
        placed["window_start"] = table["window_start"].to_numpy(np.int64) + offset
        placed["window_end"] = table["window_end"].to_numpy(np.int64) + offset
    return placed.sort_values(["chrom", "start", "end"], kind="stable").loc[:, list(columns)].reset_index(drop=True)


def _run_tfmodisco(one_hot: np.ndarray, hypothetical_contribs: np.ndarray, counts: dict[str, int],
                   geometry: SeqletGeometry, task: str, settings: DiscoverySettings, silent: float) -> dict[str, list]:
    """tfmodisco-lite's patterns of each sign with enough seqlets, by decreasing seqlet count; ``silent`` is the
    share of positions without contribution, named when it fails."""
    from modiscolite.tfmodisco import TFMoDISco

    runnable = [sign for sign in SIGNS if counts[sign] >= settings.min_seqlets]
    for sign in SIGNS:
        if sign not in runnable:
            log.info("task %s: %d %s seqlets, fewer than the %d needed for discovery; no %s motifs",
                     task, counts[sign], sign, settings.min_seqlets, sign)
        elif counts[sign] > settings.max_seqlets:
            log.info("task %s: clustering %d of %d %s seqlets, from regions in a random order (seed %d)",
                     task, settings.max_seqlets, counts[sign], sign, settings.seed)
    if not runnable:
        return {sign: [] for sign in SIGNS}
    try:
        pos_patterns, neg_patterns = TFMoDISco(
            one_hot=one_hot, hypothetical_contribs=hypothetical_contribs,
            sliding_window_size=geometry.core, flank_size=geometry.flank,
            trim_to_window_size=geometry.trim, initial_flank_to_add=geometry.pattern_flank,
            final_flank_to_add=0, target_seqlet_fdr=settings.target_fdr, min_passing_windows_frac=0.0,
            # TFMoDISco clusters a sign when it has more than min_metacluster_size seqlets.
            min_metacluster_size=settings.min_seqlets - 1, final_min_cluster_size=MIN_MOTIF_SEQLETS,
            max_seqlets_per_metacluster=settings.max_seqlets, n_leiden_runs=settings.n_leiden_runs,
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # leidenalg raises BaseException itself
        raise MotifError(
            f"task {task}: tfmodisco-lite failed on the task's {counts['pos']} positive and {counts['neg']} negative "
            f"seqlets ({type(error).__name__}: {error}); seqlets whose windows carry no contribution make its "
            f"similarities undefined, and {100 * silent:.0f}% of the positions in the window carry none: a narrower "
            "window (motifs.window, --window) on the bases the model's output sees, or fewer regions without "
            "contribution, avoids them" + (" (scattered zeros come from a model whose max pools credit few "
                                           "positions: one with more filters, or average pooling, credits more)"
                                           if silent > MAX_SILENT_SHARE else "")
        ) from error
    found = {"pos": pos_patterns or [], "neg": neg_patterns or []}
    if not (found["pos"] or found["neg"]):
        log.info("task %s: tfmodisco-lite found no motif supported by enough seqlets", task)
    # Stable by decreasing seqlet count: the final expansion can drop edge seqlets after tfmodisco-lite sorted.
    return {sign: sorted(found[sign], key=lambda pattern: -len(pattern.seqlets)) for sign in SIGNS}


def discover_motifs(
    onehot: np.ndarray,
    hypothetical: np.ndarray,
    regions: pd.DataFrame,
    task: str,
    window_start: int = 0,
    settings: DiscoverySettings | None = None,
) -> TaskDiscovery:
    """Call seqlets and discover motifs in one task's contributions.

    Parameters
    ----------
    onehot
        ``(N, 4, W)`` one-hot of each region's discovery window: a numpy array, torch tensor or nested lists.
    hypothetical
        ``(N, 4, W)`` hypothetical contributions for the task in the same windows, finite; as ``onehot``.
    regions
        The N regions (``chrom``, ``start``, ``name``), in the order of the arrays.
    task
        Task name, used in motif names.
    window_start
        Offset of the window within each region (see :func:`resolve_window`), for genome coordinates.
    settings
        Discovery parameters.

    Returns
    -------
    TaskDiscovery
        Seqlets, motifs and tfmodisco-lite's patterns. A task with too few seqlets gives no motifs and a
        logged message saying why.

    Raises
    ------
    SequenceError
        If ``onehot`` or ``hypothetical`` is not ``(N, 4, W)``
        (:func:`genomatt.motifs.seqlets.check_tracks`).
    NonFiniteError
        If either holds NaN or infinite values, naming the first region row and position.
    MotifError
        If the two differ in shape, or ``regions`` lacks a column or has another number of rows.
    """
    settings = settings or DiscoverySettings()
    onehot, hypothetical = as_numpy(onehot), as_numpy(hypothetical)
    check_tracks(onehot, f"task {task}: one-hot")
    check_tracks(hypothetical, f"task {task}: hypothetical contributions")
    if hypothetical.shape != onehot.shape:
        raise MotifError(f"task {task}: expected one-hot and hypothetical contributions of one shape (N, 4, W), "
                         f"got {onehot.shape} and {hypothetical.shape}")
    missing = [column for column in ("chrom", "start", "name") if column not in getattr(regions, "columns", ())]
    if missing:
        raise MotifError(f"task {task}: regions must be a table with columns chrom, start and name, got one without "
                         f"{', '.join(missing)}")
    if len(regions) != len(onehot):
        raise MotifError(f"task {task}: {len(regions)} regions for {len(onehot)} contribution rows")
    width = onehot.shape[2]
    geometry = seqlet_geometry(width)
    order = np.random.default_rng(settings.seed).permutation(len(onehot))
    # Length-last float32 arrays in the random region order, as TFMoDISco takes them.
    one_hot = np.ascontiguousarray(onehot.transpose(0, 2, 1)[order], dtype=np.float32)
    hypothetical_contribs = np.ascontiguousarray(hypothetical.transpose(0, 2, 1)[order], dtype=np.float32)
    contrib = np.multiply(one_hot, hypothetical_contribs)
    contrib_by_channel = contrib.transpose(0, 2, 1)

    zero = np.all(hypothetical_contribs == 0, axis=2)
    silent = float(zero.mean()) if zero.size else 0.0
    if silent > MAX_SILENT_SHARE:
        at_n = float((zero & ~one_hot.any(axis=2)).mean())
        causes = [f"{100 * at_n:.0f}% at N bases (padding past chromosome ends, assembly gaps)"] if at_n else []
        if silent - at_n > 0:
            causes.append(f"{100 * (silent - at_n):.0f}% at A, C, G or T (a model whose max pools credit the argmax "
                          "of each pooled window alone, or a window wider than what the model's output sees)")
        log.warning("task %s: %.0f%% of the positions of the regions' windows carry exactly zero contribution (%s): "
                    "tfmodisco-lite fits its seqlet null to window sums that are mostly 0 there, so it may take noise "
                    "for seqlets, and its similarities of seqlets without contribution are undefined; judge the motifs "
                    "by their known matches and seqlet counts", task, 100 * silent, "; ".join(causes))
    with bounded_threads(settings.threads):
        called, _ = call_seqlets(contrib_by_channel, geometry, settings.target_fdr, task)
        counts = {sign: int((called["sign"] == sign).sum()) for sign in SIGNS}
        log.info("task %s: %d positive and %d negative seqlets at FDR %g in a %d bp window",
                 task, counts["pos"], counts["neg"], settings.target_fdr, width)
        patterns = _run_tfmodisco(one_hot, hypothetical_contribs, counts, geometry, task, settings, silent)

    patterns = _simple_patterns(_strong_patterns(patterns, settings.min_strength, task), task)
    typical = {sign: [_typical_seqlets(pattern, contrib_by_channel, settings.min_seqlet_share, sign,
                                       f"task {task}: {sign} pattern {index}")
                      for index, pattern in enumerate(patterns[sign])] for sign in SIGNS}
    # Motifs stay numbered by decreasing seqlet count.
    patterns = {sign: sorted((pattern for index, pattern in enumerate(typical[sign])
                              if supported(pattern, f"task {task}: {sign} pattern {index}")),
                             key=lambda pattern: -len(pattern.seqlets)) for sign in SIGNS}
    motifs, tables = [], []
    for sign in SIGNS:
        for index, pattern in enumerate(patterns[sign]):
            motif = pattern_motif(pattern, f"{task}.{sign}.{index}", task, sign)
            motifs.append(motif)
            cores = _seqlet_cores(pattern.seqlets, motif.trim_start, motif.trim_end, contrib_by_channel)
            tables.append(motif_seqlet_table(cores, motif))
    for motif in motifs:
        log.info("task %s: motif %s from %d seqlets", task, motif.name, motif.n_seqlets)

    called_table = called.assign(task=task)
    motif_table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        {column: np.zeros(0, dtype) for column, dtype in _WINDOW_SEQLET_DTYPES.items()})
    return TaskDiscovery(
        task=task, window_start=window_start, window_size=width, geometry=geometry,
        called_seqlets=place(called_table, order, regions, window_start, CALLED_SEQLET_COLUMNS),
        motifs=motifs,
        motif_seqlets=place(motif_table, order, regions, window_start, MOTIF_SEQLET_COLUMNS),
        patterns=patterns, region_order=order,
    )


def _best_fit(residual: np.ndarray, part: np.ndarray) -> tuple[float, np.ndarray]:
    """Energy of ``residual`` that the best non-negative multiple of ``part`` (either strand, any offset fully
    inside ``residual``) explains, and that fitted placement."""
    best = (0.0, np.zeros_like(residual))
    width = part.shape[1]
    for matrix in (part, reverse_complement_matrix(part)):
        norm = float((matrix**2).sum())
        for offset in range(residual.shape[1] - width + 1):
            dot = float((residual[:, offset : offset + width] * matrix).sum())
            if dot > 0 and dot * dot / norm > best[0]:
                placed = np.zeros_like(residual)
                placed[:, offset : offset + width] = dot / norm * matrix
                best = (dot * dot / norm, placed)
    return best


def composite_of(cwm: np.ndarray, parts: Mapping[str, np.ndarray], min_explained: float = COMPOSITE_EXPLAINED,
                 min_each: float = COMPOSITE_EACH) -> tuple[str, str] | None:
    """The two motifs whose cores, side by side, explain a CWM, or ``None``.

    Two placements are fitted greedily (each the non-negative multiple of a part's core, either strand, that
    explains most of what the previous left): the CWM is a composite when they lie at different places,
    together explain at least ``min_explained`` of its energy (sum of squares) and each at least ``min_each``.
    One motif explaining the CWM alone, or its core twice (a palindrome, a homodimer's two half-sites), is no
    composite (that is the motif itself, or a variant of it).

    Parameters
    ----------
    cwm
        ``(4, W)`` CWM of the candidate pattern.
    parts
        Name → ``(4, w)`` core CWM of each motif it may be made of.
    min_explained
        Least share of the CWM's energy the two placements explain together.
    min_each
        Least share each placement explains.

    Returns
    -------
    tuple of (str, str) or None
        The names of the two parts, in the order they were fitted.
    """
    cwm = np.asarray(cwm, dtype=np.float64)
    energy = float((cwm**2).sum())
    if energy == 0 or not parts:
        return None
    residual, fits = cwm.copy(), []
    for _ in range(2):
        # Two different motifs: one core twice (a palindrome, a homodimer's two half-sites) is the motif itself,
        # whether it is fitted twice or as two patterns of the same motif (tfmodisco-lite's split clusters).
        candidates = [(name, *_best_fit(residual, np.asarray(part, np.float64))) for name, part in parts.items()
                      if part.shape[1] <= cwm.shape[1] and not any(_same_motif(part, parts[fit[0]]) for fit in fits)]
        if not candidates:
            return None
        name, explained, placed = max(candidates, key=lambda candidate: candidate[1])
        fits.append((name, explained / energy, placed))
        residual = residual - placed
    (first, share_first, placed_first), (second, share_second, placed_second) = fits
    apart = not np.any((placed_first != 0).any(axis=0) & (placed_second != 0).any(axis=0))
    explained = 1 - float((residual**2).sum()) / energy
    if apart and explained >= min_explained and min(share_first, share_second) >= min_each:
        return first, second
    return None


def _same_motif(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether either core explains the other to :data:`DUPLICATE_EXPLAINED` (one motif, found twice)."""
    return (variant_of(first, {"": second}, DUPLICATE_EXPLAINED) is not None
            or variant_of(second, {"": first}, DUPLICATE_EXPLAINED) is not None)


def variant_of(cwm: np.ndarray, parts: Mapping[str, np.ndarray],
               min_explained: float = VARIANT_EXPLAINED) -> str | None:
    """The motif whose core alone (a non-negative multiple, either strand, any offset) explains at least
    ``min_explained`` of a CWM's energy, or ``None``."""
    cwm = np.asarray(cwm, dtype=np.float64)
    energy = float((cwm**2).sum())
    fits = [(name, _best_fit(cwm, np.asarray(part, np.float64))[0]) for name, part in parts.items()
            if part.shape[1] <= cwm.shape[1]]
    if energy == 0 or not fits:
        return None
    name, explained = max(fits, key=lambda fit: fit[1])
    return name if explained >= min_explained * energy else None


def _simple_patterns(patterns: dict[str, list], task: str) -> dict[str, list]:
    """The patterns of each sign that are neither composites (:func:`composite_of`) of two other patterns of
    the same sign with narrower cores, nor small variants (:func:`variant_of`) of a pattern with more than
    ``1 / SMALL_SHARE`` times their seqlets, nor duplicates of a pattern with more seqlets (its core explains
    :data:`DUPLICATE_EXPLAINED` of theirs); their sites are left to the simpler motifs.

    Patterns are judged from the most seqlets down, each against the patterns kept so far and, as parts of a
    composite, those not judged yet (which are then kept, or dropped for a kept pattern of the same motif): the
    sites of a dropped pattern are always left to kept ones (a two-site pattern dropped as a composite of a
    smaller one-site pattern, which was then dropped as a small variant of it, left a task with no motif).
    """
    kept = {}
    for sign in SIGNS:
        cores = [_core(pattern.contrib_scores.T) for pattern in patterns[sign]]
        sizes = [len(pattern.seqlets) for pattern in patterns[sign]]
        order = sorted(range(len(cores)), key=lambda index: -sizes[index])
        name = [f"{sign} pattern {index}" for index in range(len(cores))]
        dropped: set[int] = set()
        kept_indices: list[int] = []
        for index in order:
            pattern, width = patterns[sign][index], cores[index].shape[1]
            parts = {name[other]: cores[other] for other in range(len(cores))
                     if other != index and other not in dropped and cores[other].shape[1] < width}
            composite = composite_of(pattern.contrib_scores.T, parts)
            larger = {name[other]: cores[other] for other in kept_indices
                      if sizes[other] * SMALL_SHARE > sizes[index]}
            variant = variant_of(pattern.contrib_scores.T, larger)
            more = {name[other]: cores[other] for other in kept_indices if sizes[other] > sizes[index]}
            duplicate = variant_of(pattern.contrib_scores.T, more, DUPLICATE_EXPLAINED)
            if composite is not None:
                log.info("task %s: %s pattern %d (%d seqlets) dropped: a composite of %s and %s", task, sign, index,
                         sizes[index], *composite)
            elif variant is not None:
                log.info("task %s: %s pattern %d (%d seqlets) dropped: a small variant of %s, which has over %g times "
                         "its seqlets", task, sign, index, sizes[index], variant, 1 / SMALL_SHARE)
            elif duplicate is not None:
                log.info("task %s: %s pattern %d (%d seqlets) dropped: %s, which has more seqlets, explains %g of its "
                         "CWM (the same motif)", task, sign, index, sizes[index], duplicate, DUPLICATE_EXPLAINED)
            else:
                kept_indices.append(index)
                continue
            dropped.add(index)
        kept[sign] = [patterns[sign][index] for index in sorted(kept_indices)]
    return kept


def _core(cwm: np.ndarray) -> np.ndarray:
    start, end = trim_bounds(cwm)
    return cwm[:, start:end]
