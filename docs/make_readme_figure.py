"""Draw the README picture: the Kiel diagram of the catalogue made by ``produce-catalog``.

Usage (after ``gaiarvs-cnn produce-catalog`` in the repository root)::

    python docs/make_readme_figure.py [catalog/gaiarvs_cnn_catalog.fits]

Writes ``docs/_static/kiel_readme.png`` with `gaiarvs_cnn.validation.figures.plot_kiel`:
stars with ``flag_boundary == "00000000"`` coloured by [M/H], the others as a grey
density.
"""
import sys
from pathlib import Path

import numpy as np

from gaiarvs_cnn import read_catalog
from gaiarvs_cnn.flags import GOOD_FLAG
from gaiarvs_cnn.validation.figures import plot_kiel

OUT = Path(__file__).resolve().parent / "_static" / "kiel_readme.png"


def main(path: str = "catalog/gaiarvs_cnn_catalog.fits") -> Path:
    """Draw the Kiel diagram of the catalogue at ``path`` into `OUT` and return `OUT`."""
    catalog = read_catalog(path)
    flagged = np.asarray(catalog["flag_boundary"]) != GOOD_FLAG
    fig = plot_kiel(catalog, background=flagged)
    fig.savefig(OUT, dpi=110)
    return OUT


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
