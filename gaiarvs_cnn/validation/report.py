"""The validation report: statistics tables (ECSV), figures (PNG/PDF) and a summary page.

`write_report` writes, into one directory::

    <name>_<table>.ecsv       one per statistics table of each comparison
    <name>_<figure>.png/.pdf  one per figure
    summary.md, summary.html  bias and dispersion per label next to the paper's values

Every file is written atomically (temporary file + `os.replace`).
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import log
from astropy.table import Table
from matplotlib.figure import Figure

from ..exceptions import OutputExistsError, Param
from ..utils.atomic import atomic_path
from ..utils.lock import RunLock
from ..version import __version__

#: File listing what a report wrote (so that an overwrite removes stale files only).
MANIFEST = "report_files.txt"

__all__ = ["PAPER_VALUES", "ValidationResult", "paper_value", "write_report", "summary_rows"]

#: What the paper states (comparison, label, subset) -> (bias, dispersion, where).
PAPER_VALUES: dict[tuple[str, str, str], tuple[str, str, str]] = {
    ("seismic", "logg", "all"): ("no significant bias (log g < 2.6)", "0.04-0.09",
                                 "Sect. 6.2, Fig. 21 (observed)"),
    ("seismic", "logg", "logg<2.3"): ("no significant bias", "0.04-0.09", "Sect. 6.2"),
    ("seismic", "logg", "2.3<=logg<2.6"): ("no significant bias", "0.04-0.09", "Sect. 6.2"),
    ("seismic", "logg", "logg>=2.6"): ("~0.1", "0.04-0.09", "Sect. 6.2"),
    ("apogee vs seismic", "logg", "all"): ("no significant bias", "0.05-0.07", "Sect. 6.2"),
    ("gsp-spec vs seismic", "logg", "all"): ("0.10-0.11 (calibrated GSP-Spec)", "~0.15",
                                             "Sect. 6.2"),
    ("galah", "teff", "snr 15-25"): ("no strong systematics (> 300 K for Teff > 6500 K)", "-",
                                     "Sect. 6.3, Fig. 22"),
    ("galah", "logg", "snr 15-25"): ("weak trend", "~0.1", "Sect. 6.3"),
    ("galah", "logg", "logg<2.2"): ("-", "0.17", "Sect. 6.3"),
    ("galah", "feh", "[Fe/H]>=-1"): ("remarkable agreement", "< 0.1", "Sect. 6.3"),
    ("galah", "mh", "[Fe/H]>=-1"): ("remarkable agreement", "< 0.1", "Sect. 6.3"),
    ("galah", "feh", "metal-poor [Fe/H]<-1"): ("-", "0.19", "Sect. 6.3"),
    ("galah", "mh", "metal-poor [Fe/H]<-1"): ("-", "0.19", "Sect. 6.3"),
    ("galah", "alpham", "snr 15-25"): ("matches well", "well below 0.1", "Sect. 6.3"),
    ("truth", "teff", "all"): ("no significant offset", "59", "Sect. 3.3 (vs APOGEE)"),
    ("truth", "logg", "all"): ("no significant offset", "0.11", "Sect. 3.3 (vs APOGEE)"),
    ("truth", "mh", "all"): ("-0.04 for [M/H] > -0.5", "0.07", "Sect. 3.3 (vs APOGEE)"),
    ("truth", "alpham", "all"): ("-", "0.04", "Sect. 3.3 (vs APOGEE)"),
    ("truth", "feh", "all"): ("-", "0.07", "Sect. 3.3 (vs APOGEE)"),
    ("truth", "teff", "metal-poor snr 15-25"): ("no significant bias", "75", "Sect. 4.4"),
    ("truth", "logg", "metal-poor snr 15-25"): ("no significant bias", "0.17", "Sect. 4.4"),
    ("truth", "mh", "metal-poor snr 15-25"): ("no significant bias", "0.14", "Sect. 4.4"),
    ("truth", "alpham", "metal-poor snr 15-25"): ("tiny trend", "< 0.07", "Sect. 4.4"),
    ("gsp-spec", "ratio", "all"): ("-", "GSP-Spec dispersion 2-3 (up to 5) x the CNN's",
                                   "Sects. 3.3, 4.5"),
    ("gsp-phot", "ratio", "all"): ("-", "GSP-Phot dispersion 2-3 x the CNN's", "Sect. 6.1"),
    ("clusters", "feh", "all"): ("agrees with GALAH except NGC 2539 (+0.26)",
                                 "CNN within-cluster 0.05 (NGC 2632)", "Sect. 6.4, Fig. 23"),
}


# the metal-poor and training-sample values are APOGEE comparisons: same for "apogee"
PAPER_VALUES.update({("apogee", *k[1:]): v for k, v in PAPER_VALUES.items() if k[0] == "truth"})


def paper_value(comparison: str, label: str, subset: str) -> tuple[str, str, str]:
    """The paper's (bias, dispersion, where) for a statistics row.

    Parameters
    ----------
    comparison, label, subset : str
        As in a `~gaiarvs_cnn.validation.stats.comparison_table` row.

    Returns
    -------
    tuple of str
        Empty strings where the paper states nothing.
    """
    return PAPER_VALUES.get((comparison, label, subset), ("", "", ""))


@dataclass
class ValidationResult:
    """Output of one comparison: statistics tables, figures, summary rows and notes.

    Parameters
    ----------
    name, tables, figures, summary, notes
        See Attributes.

    Attributes
    ----------
    name : str
        Comparison name (``"galah"``, ``"seismic"`` ...), used as the file-name prefix.
    tables : dict of str -> `~astropy.table.Table`
        Statistics tables, written as ``<name>_<key>.ecsv``.
    figures : dict of str -> `~matplotlib.figure.Figure`
        Figures, written as ``<name>_<key>.png`` and ``.pdf``.
    summary : `~astropy.table.Table` or None
        Rows of a `~gaiarvs_cnn.validation.stats.comparison_table` shown on the summary
        page next to the paper's values.
    notes : list of str
        Free-text findings (science checks, caveats) shown on the summary page.
    """

    name: str
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    summary: Table | None = None
    notes: list[str] = field(default_factory=list)


def _atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move the temporary file onto ``path``."""
    with atomic_path(path, suffix=Path(path).suffix) as tmp:
        write(str(tmp))


def _fmt(value, label: str = "") -> str:
    if isinstance(value, (str, np.str_)):
        return str(value)
    if value is None or (isinstance(value, (float, np.floating)) and not np.isfinite(value)):
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.1f}" if label == "teff" or abs(value) >= 10 else f"{value:.3f}"


def summary_rows(summary: Table) -> list[list[str]]:
    """Rows (as strings) of the summary page for one comparison's summary Table.

    Parameters
    ----------
    summary : `~astropy.table.Table`
        `~gaiarvs_cnn.validation.stats.comparison_table` rows.

    Returns
    -------
    list of list of str
        One row per statistics row, with the paper's values appended.
    """
    rows = []
    for r in summary:
        bias, disp, where = paper_value(r["comparison"], r["label"], r["subset"])
        lab = r["label"]
        rows.append([r["comparison"], lab, r["subset"], _fmt(r["n"]),
                     f"{_fmt(r['bias'], lab)} ± {_fmt(r['e_bias'], lab)}",
                     _fmt(r["sigma_mad"], lab), _fmt(r["std"], lab), bias or "-",
                     disp or "-", where or "-"])
    return rows


_SUMMARY_HEAD = ["comparison", "label", "subset", "N", "bias (median)", "σ (MAD)", "std",
                 "paper bias", "paper dispersion", "paper"]


def _table_strings(table: Table) -> tuple[list[str], list[list[str]]]:
    head = list(table.colnames)
    label_col = "label" if "label" in head else None
    rows = [[_fmt(row[c], row[label_col] if label_col else "") for c in head] for row in table]
    return head, rows


def _markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
    return "\n".join(out + ["</table>"])


def _render(results: Sequence[ValidationResult], files: dict[str, list[str]], md: bool,
            meta: dict) -> str:
    table = _markdown_table if md else _html_table
    h1, h2 = (("# ", "## ") if md else ("<h1>", "<h2>"))
    end1, end2 = ("", "") if md else ("</h1>", "</h2>")
    esc = (lambda s: s) if md else html.escape
    parts = [f"{h1}gaiarvs-cnn validation report{end1}",
             esc(f"gaiarvs-cnn {__version__}; " + "; ".join(f"{k}: {v}" for k, v in meta.items())),
             esc("bias = median(CNN - reference) ± its standard error; σ (MAD) = 1.4826 × "
                 "median absolute deviation. Paper: Guiglion, Nepal et al. (2024).")]
    for res in results:
        parts.append(f"{h2}{esc(res.name)}{end2}")
        if res.summary is not None and len(res.summary):
            parts.append(table(_SUMMARY_HEAD, summary_rows(res.summary)))
        for key, tab in res.tables.items():
            if res.summary is not None and key == "stats":
                continue   # already shown (key subsets) in the summary rows above
            if len(tab) <= 40 and len(tab.colnames) <= 16:
                parts.append(esc(f"{key}:"))
                parts.append(table(*_table_strings(tab)))
        parts += [esc(f"- {n}") if md else f"<p>{html.escape(n)}</p>" for n in res.notes]
        for name in files.get(res.name, []):
            if name.endswith(".png"):
                parts.append(f"![{name}]({name})" if md else
                             f'<p><img src="{html.escape(name)}" alt="{html.escape(name)}" '
                             'style="max-width:100%"></p>')
            elif not name.endswith(".pdf"):
                parts.append(f"[{name}]({name})" if md else
                             f'<p><a href="{html.escape(name)}">{html.escape(name)}</a></p>')
    if md:
        return "\n\n".join(parts) + "\n"
    body = "\n".join(p if p.startswith("<") else f"<p>{p}</p>" for p in parts)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>gaiarvs-cnn "
            "validation</title><style>table{border-collapse:collapse;font-size:small}"
            "td,th{border:1px solid #aaa;padding:2px 5px}</style></head><body>\n"
            f"{body}\n</body></html>\n")


def write_report(results: Sequence[ValidationResult], outdir="validation_report",
                 formats: Sequence[str] = ("png", "pdf"), overwrite: bool = False,
                 meta: dict | None = None, dpi: int = 150) -> Path:
    """Write every table, figure and the summary pages of ``results`` into ``outdir``.

    Parameters
    ----------
    results : sequence of `ValidationResult`
    outdir : path-like
        Output directory (created).
    formats : sequence of str
        Figure formats.
    overwrite : bool
        Replace a previous report (the files its manifest ``report_files.txt`` lists are
        removed first, other files are left alone); otherwise refuse if ``summary.md``
        already exists.
    meta : dict, optional
        Provenance shown at the top of the summary (catalogue, store, reference source).
    dpi : int
        Resolution of raster figures.

    Returns
    -------
    pathlib.Path
        The ``summary.md`` path.

    Raises
    ------
    OutputExistsError
        If ``outdir`` already holds a report and ``overwrite`` is False.
    gaiarvs_cnn.utils.lock.RunLockedError
        If another run writes a report into ``outdir``.
    """
    outdir = Path(outdir)
    if (outdir / "summary.md").exists() and not overwrite:
        raise OutputExistsError(outdir, what="validation report in", hint=(
            "pass ", Param("overwrite", True), " or choose another directory"))
    with RunLock.beside(outdir, f"validation report {outdir}"):
        return _write_locked(results, outdir, formats, dpi, meta)


def _write_locked(results, outdir: Path, formats, dpi, meta) -> Path:
    """`write_report` once the report folder's run lock is held."""
    outdir.mkdir(parents=True, exist_ok=True)
    _remove_previous(outdir)
    files: dict[str, list[str]] = {}
    for res in results:
        names = files.setdefault(res.name, [])
        for key, tab in res.tables.items():
            path = outdir / f"{res.name}_{key}.ecsv"
            _atomic(path, lambda tmp, t=tab: t.write(tmp, format="ascii.ecsv", overwrite=True))
            names.append(path.name)
        for key, fig in res.figures.items():
            for ext in formats:
                path = outdir / f"{res.name}_{key}.{ext}"
                _atomic(path, lambda tmp, f=fig, e=ext: f.savefig(tmp, format=e, dpi=dpi))
                names.append(path.name)
    meta = dict(meta or {})
    for name, md in (("summary.md", True), ("summary.html", False)):
        text = _render(results, files, md, meta)
        _atomic(outdir / name, lambda tmp, s=text: Path(tmp).write_text(s, encoding="utf-8"))
    listing = "\n".join(n for names in files.values() for n in names) + "\n"
    _atomic(outdir / MANIFEST, lambda tmp: Path(tmp).write_text(listing, encoding="utf-8"))
    log.info(f"Validation report written to {outdir}/ ({sum(map(len, files.values()))} files)")
    return outdir / "summary.md"


def _remove_previous(outdir: Path) -> None:
    """Delete the files a previous report listed in its manifest (nothing else)."""
    manifest = outdir / MANIFEST
    if not manifest.exists():
        return
    for name in manifest.read_text(encoding="utf-8").split():
        path = outdir / Path(name).name
        if path.is_file():
            path.unlink()
