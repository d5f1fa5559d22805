"""Make the pictures of the README and the tutorial from a quick-start run.

Usage, in the directory where the quick start ran (``gaiarvs-cnn produce-catalog`` then
``gaiarvs-cnn validate --catalog catalog/gaiarvs_cnn_catalog.fits --against all``)::

    python <repo>/docs/make_readme_figure.py [catalog/gaiarvs_cnn_catalog.fits] [validation_report]

* ``docs/_static/kiel_readme.png``: the Kiel diagram of the catalogue, drawn with
  `gaiarvs_cnn.validation.figures.plot_kiel` (stars with ``flag_boundary ==
  "00000000"`` coloured by [M/H], the others as a grey density);
* ``docs/_static/tutorial/<name>.png``: the report figures shown in the tutorial,
  reduced to at most 1100 pixels wide and 128 colours.
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from gaiarvs_cnn import read_catalog
from gaiarvs_cnn.flags import GOOD_FLAG
from gaiarvs_cnn.validation.figures import plot_kiel

STATIC = Path(__file__).resolve().parent / "_static"
TUTORIAL_FIGURES = ("precision_kiel", "galah_comparison")
MAX_WIDTH = 1100


def readme_kiel(catalog_path) -> Path:
    """Draw the Kiel diagram of the catalogue at ``catalog_path``; return the PNG path."""
    catalog = read_catalog(catalog_path)
    flagged = np.asarray(catalog["flag_boundary"]) != GOOD_FLAG
    out = STATIC / "kiel_readme.png"
    plot_kiel(catalog, background=flagged).savefig(out, dpi=130)
    return out


def tutorial_figures(report_dir) -> list[Path]:
    """Copy the tutorial's report figures from ``report_dir``, reduced; return the paths."""
    outs = []
    for name in TUTORIAL_FIGURES:
        image = Image.open(Path(report_dir) / f"{name}.png").convert("RGB")
        width = min(image.width, MAX_WIDTH)
        image = image.resize((width, round(image.height * width / image.width)),
                             Image.LANCZOS).quantize(colors=128)
        out = STATIC / "tutorial" / f"{name}.png"
        out.parent.mkdir(exist_ok=True)
        image.save(out, optimize=True)
        outs.append(out)
    return outs


if __name__ == "__main__":
    args = sys.argv[1:] + ["catalog/gaiarvs_cnn_catalog.fits", "validation_report"][len(
        sys.argv[1:]):]
    print(readme_kiel(args[0]))
    print(*tutorial_figures(args[1]), sep="\n")
