"""Cost model of a catalogue production: core-hours and wall-clock hours from measured rates.

``benchmarks/bench_costmodel.py`` measures the CPU time per star of every stage on one core
and the training time of one member; the functions here turn those rates into core-hours
for a number of stars and into wall-clock hours on ``W`` workers (one core each), and draw
the cost against the number of stars (`cost_figure`, shown in ``docs/costmodel.rst``).

Inference scales linearly: chunks are independent, so ``W`` workers divide the time (as
long as the file system keeps up, which is not modelled). Training is one fixed cost per
ensemble, independent of the catalogue size; its members are independent tasks, so
``W`` workers need ``ceil(n_members / W)`` member times (no gain beyond ``n_members``).

Examples
--------
>>> from gaiarvs_cnn.production.costmodel import inference_hours, training_hours
>>> inference_hours(3.6, 1_000_000)            # 3.6 CPU-ms per star, 10^6 stars
1.0
>>> training_hours(10.0, n_members=28, n_train_stars=45_000, epochs=100, workers=28)
(350.0, 12.5)
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["RELEASES", "WORKERS", "inference_hours", "training_hours", "cost_table",
           "cost_figure"]

#: Stars with an RVS spectrum per Gaia release: DR3 (published), DR4 and DR5 (expected).
RELEASES = {"DR3": 886_080, "DR4": 3e7, "DR5": 2e8}
#: Worker counts of the tables.
WORKERS = (1, 4, 16, 64, 256, 1024)


def inference_hours(cpu_ms_per_star: float, n_stars: float, workers: int = 1) -> float:
    """Hours of inference for ``n_stars`` on ``workers`` cores (core-hours for one worker).

    Parameters
    ----------
    cpu_ms_per_star : float
        CPU milliseconds per star of every stage together, on one core.
    n_stars : float
        Stars to process.
    workers : int
        Worker cores sharing the chunks.

    Returns
    -------
    float
        ``n_stars * cpu_ms_per_star / 3.6e6 / workers``.
    """
    return float(n_stars) * float(cpu_ms_per_star) / 3.6e6 / int(workers)


def training_hours(cpu_s_per_member_epoch_per_1000: float, *, n_members: int,
                   n_train_stars: float, epochs: float, workers: int = 1
                   ) -> tuple[float, float]:
    """Core-hours and wall-clock hours of training an ensemble on ``workers`` cores.

    Parameters
    ----------
    cpu_s_per_member_epoch_per_1000 : float
        CPU seconds of one member for one epoch over 1000 training stars (one core;
        validation included).
    n_members : int
        Members of the ensemble (paper: 28).
    n_train_stars : float
        Stars of the training sample.
    epochs : float
        Epochs per member (the maximum, or the mean that early stopping leaves).
    workers : int
        Worker cores; each trains one member at a time.

    Returns
    -------
    (float, float)
        Core-hours, and wall-clock hours: ``ceil(n_members / workers)`` member times.
    """
    member_hours = cpu_s_per_member_epoch_per_1000 * n_train_stars / 1000 * epochs / 3600
    core_hours = member_hours * n_members
    return float(core_hours), float(member_hours * math.ceil(n_members / int(workers)))


def cost_table(cpu_ms_per_star: float, *, releases: Mapping[str, float] = RELEASES,
               workers=WORKERS) -> dict:
    """Core-hours and wall-clock hours per release and worker count (inference).

    Parameters
    ----------
    cpu_ms_per_star : float
        CPU milliseconds per star of the whole chain, on one core.
    releases : mapping of str to float
        Release name -> number of stars.
    workers : sequence of int
        Worker counts.

    Returns
    -------
    dict
        ``{release: {"n_stars", "core_hours", "wall_hours_on_workers": {"W": hours}}}``,
        hours rounded to 3 significant digits.
    """
    def r3(x: float) -> float:
        return float(f"{x:.3g}")

    return {rel: {"n_stars": n,
                  "core_hours": r3(inference_hours(cpu_ms_per_star, n)),
                  "wall_hours_on_workers": {str(w): r3(inference_hours(cpu_ms_per_star, n, w))
                                            for w in workers}}
            for rel, n in releases.items()}


def cost_figure(cpu_ms_per_star: Mapping[str, float],
                training_core_hours: Mapping[str, float] | None = None, *,
                releases: Mapping[str, float] = RELEASES, n_min: float = 1e5,
                n_max: float = 1e9):
    """Core-hours of inference against the number of stars, one line per network.

    Parameters
    ----------
    cpu_ms_per_star : mapping of str to float
        Network name -> CPU milliseconds per star of the whole chain (one core).
    training_core_hours : mapping of str to float, optional
        Network name -> core-hours of training its ensemble, drawn as a dashed horizontal
        line in the colour of its inference line (a fixed cost, whatever the number of stars).
    releases : mapping of str to float
        Releases marked by vertical lines (name -> stars).
    n_min, n_max : float
        Range of the number of stars.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.add_subplot()
    n = np.logspace(np.log10(n_min), np.log10(n_max), 50)
    training_core_hours = training_core_hours or {}
    for i, (name, ms) in enumerate(cpu_ms_per_star.items()):
        colour = f"C{i}"
        ax.loglog(n, [inference_hours(ms, x) for x in n], color=colour,
                  label=f"{name}: inference ({ms:.3g} CPU-ms/star)")
        if name in training_core_hours:
            ax.axhline(training_core_hours[name], color=colour, ls="--", lw=1,
                       label=f"{name}: training ({training_core_hours[name]:.3g} core-h)")
    for rel, size in releases.items():
        ax.axvline(size, color="0.6", lw=0.8, ls=":")
        ax.text(size, 1.02, rel, transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=8)
    ax.set_xlabel("stars")
    ax.set_ylabel("core-hours (divide by the number of workers for wall-clock hours)")
    ax.yaxis.label.set_fontsize(8)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    return fig
