"""The loopback archive's content from a folder of real Gaia DR3 files.

`RealProducts` names the files (the repository's are ``tests/data/gaia_real/``):
gaia_source rows, RVS DataLink products (CSV, and FITS rewritten as CSV) and XP continuous
rows. `build_archive` makes the small real-data archive of the tests from them: the
``gaiadr3.*`` tables, the reference-catalogue tables of
`gaiarvs_cnn.archives.loopback.reference_tables`, the VizieR Gaia DR3 table of the XMatch
service, and the DataLink products as source_id -> CSV text.
"""
from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table, vstack

from ...utils.arrays import masked_to_nan
from .reference_tables import reference_tables
from .services import Archive

__all__ = ["RealProducts", "RVS_CSV_HEADER", "build_archive", "rvs_products", "xp_rows",
           "xp_product"]


@dataclass(frozen=True)
class RealProducts:
    """The real Gaia DR3 files the loopback archive serves, in the layout of the
    repository's ``tests/data/gaia_real/`` (see the README there for their provenance).

    Parameters
    ----------
    root : path-like
        The folder.
    """

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def rvs_csv(self) -> list[Path]:
        """RVS DataLink CSV products."""
        return sorted((self.root / "rvs_datalink_csv").glob("*.csv"))

    @property
    def rvs_fits(self) -> list[Path]:
        """RVS DataLink FITS products."""
        return sorted((self.root / "rvs_datalink_fits").glob("*.fits"))

    @property
    def xp_csv(self) -> Path:
        """GaiaXPy's XP_CONTINUOUS CSV."""
        return self.root / "xp_continuous" / "XP_CONTINUOUS_RAW.csv"

    @property
    def xp_bundle(self) -> Path:
        """astroquery's DataLink CSV bundle (XP_CONTINUOUS inside)."""
        return (self.root / "astroquery_gaia"
                / "gaia_dr3_source_id_5937083312263887616_dl_products_csv.zip")

    @property
    def gaia_source_vot(self) -> Path:
        """astroquery's recorded gaia_source rows (VOTable)."""
        return self.root / "astroquery_gaia" / "1710099405832VAL-result.vot"


RVS_CSV_HEADER = ("source_id,solution_id,ra,dec,wavelength,flux,flux_error,combined_transits,"
                  "combined_ccds,deblended_ccds")


def _fits_as_datalink_csv(path: Path) -> tuple[int, str]:
    """An RVS DataLink FITS product rewritten in the DataLink CSV layout (same numbers;
    NaN -> empty cell), so that the loopback DataLink serves one format."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        head, data = hdul[1].header, hdul[1].data
        ra, dec = (float(v) for v in head["POS"].strip("()").split(","))
        fixed = [head["SOURCEID"], head["SOLUTION"], repr(ra), repr(dec)]
        tail = [head["NTRANSIT"].strip(), head["NCCDS"].strip(), head["NDEBLEND"].strip()]
        lines = [RVS_CSV_HEADER]
        for wl, fl, fe in zip(data["wavelength"], data["flux"], data["flux_error"]):
            cells = [repr(float(wl)), "" if np.isnan(fl) else repr(float(fl)),
                     "" if np.isnan(fe) else repr(float(fe))]
            lines.append(",".join(fixed + cells + tail))
    return int(head["SOURCEID"]), "\n".join(lines) + "\n"


def rvs_products(real: RealProducts) -> dict[int, str]:
    """source_id -> RVS DataLink CSV text: two real CSV products unchanged, two real FITS
    products converted."""
    out = {}
    for path in real.rvs_csv:
        text = path.read_text()
        out[int(text.splitlines()[1].split(",", 1)[0])] = text
    out.update(_fits_as_datalink_csv(p) for p in real.rvs_fits)
    return out


def xp_rows(real: RealProducts) -> list[tuple[str, str]]:
    """(header, data line) of each real XP_CONTINUOUS CSV row (3 sources)."""
    texts = [real.xp_csv.read_text()]
    with zipfile.ZipFile(real.xp_bundle) as zf:
        texts += [zf.read(n).decode() for n in zf.namelist() if n.startswith("XP_CONTINUOUS")]
    rows = []
    for text in texts:
        header, *lines = text.splitlines()
        rows += [(header, line) for line in lines if line.strip()]
    return rows


def _gaia_source(products: RealProducts, ids: list[int],
                 ra_dec: dict[int, tuple[float, float]]) -> Table:
    """gaia_source rows for ``ids``: the two real rows of the astroquery recording,
    repeated, with source_id / ra / dec rewritten (all 152 real columns and units)."""
    real = Table.read(products.gaia_source_vot, format="votable", use_names_over_ids=True)
    rows = vstack([real[i % len(real):i % len(real) + 1] for i in range(len(ids))])
    rows["source_id"] = np.asarray(ids, dtype=np.int64)
    for i, sid in enumerate(ids):
        rows["ra"][i], rows["dec"][i] = ra_dec.get(sid, (rows["ra"][i], rows["dec"][i]))
    return rows


def _rvs_table(products: dict[int, str]) -> Table:
    """AIP-style ``gaiadr3.rvs_mean_spectrum``: one row per source, array columns."""
    sids, flux, err = [], [], []
    for sid, text in products.items():
        t = Table.read(text, format="ascii.csv")
        sids.append(sid)
        flux.append(masked_to_nan(t["flux"]))
        err.append(masked_to_nan(t["flux_error"]))
    return Table({"source_id": np.array(sids, dtype=np.int64),
                  "flux": np.array(flux, dtype=np.float32),
                  "flux_error": np.array(err, dtype=np.float32)})


def _xp_table(ids: list[int], rows: list[tuple[str, str]]) -> Table:
    """AIP-style ``gaiadr3.xp_continuous_mean_spectrum`` with array columns."""
    from ...io.spectra import XP_COLUMNS, read_xp_continuous

    batches = [read_xp_continuous("\n".join(rows[i % len(rows)]).encode(), format="csv")
               for i in range(len(ids))]
    cols = {"source_id": np.asarray(ids, dtype=np.int64)}
    for k in XP_COLUMNS:
        cols[k] = np.concatenate([b[k] for b in batches])
    return Table(cols)


@functools.lru_cache(maxsize=2)
def _content(real: RealProducts) -> tuple:
    """Static content, built once per session (the tables are never modified)."""
    rvs = rvs_products(real)
    xp_rows_ = xp_rows(real)
    ra_dec = {}
    for sid, text in rvs.items():
        fields = text.splitlines()[1].split(",")
        ra_dec[sid] = (float(fields[2]), float(fields[3]))
    sky = sorted(rvs)
    no_spectrum = [1000000000000000001]
    tables = {"gaiadr3.gaia_source": _gaia_source(real, sky + no_spectrum, ra_dec),
              "gaiadr3.rvs_mean_spectrum": _rvs_table(rvs),
              "gaiadr3.xp_continuous_mean_spectrum": _xp_table(sky, xp_rows_)}
    tables.update(reference_tables(sky, ra_dec))
    gaia = tables["gaiadr3.gaia_source"]  # VizieR I/355/gaiadr3, for the XMatch service
    tables["i/355/gaiadr3"] = Table({"Source": gaia["source_id"], "RA_ICRS": gaia["ra"],
                                     "DE_ICRS": gaia["dec"], "Gmag": gaia["phot_g_mean_mag"]})
    return rvs, xp_rows_, sky, tables


def xp_product(sid: int, header: str, line: str) -> str:
    """The XP_CONTINUOUS DataLink CSV of ``sid``: a real row with its source_id replaced."""
    return header + "\n" + str(sid) + line[line.index(","):] + "\n"


def build_archive(real) -> Archive:
    """The loopback archive's content: six real RVS stars (all with XP) plus one star
    present in gaia_source but without any spectrum (to exercise missing ids).

    Parameters
    ----------
    real : RealProducts or path-like
        The real products it serves.

    Returns
    -------
    Archive
        Not yet served (see `serve`).
    """
    rvs, xp_rows, sky, tables = _content(RealProducts(getattr(real, "root", real)))
    xp = {sid: xp_product(sid, *xp_rows[i % len(xp_rows)]) for i, sid in enumerate(sky)}
    return Archive(tables=dict(tables), rvs=dict(rvs), xp=xp)
