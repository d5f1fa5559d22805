"""A loopback archive of N format-faithful stars cloned from the real products
(`build_synthetic_archive`): the archive of the fetch and run rehearsals and benchmarks.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Mapping

import numpy as np
from astropy.table import Table

from .content import RealProducts, rvs_products, xp_product, xp_rows
from .reference_tables import synthetic_apogee, synthetic_references
from .services import Archive

__all__ = ["SYNTHETIC_ID_START", "SYNTHETIC_ID_STEP", "SYNTHETIC_SCALE", "synthetic_ids",
           "ClonedProducts", "build_synthetic_archive"]


#: source_id of the first synthetic star; the others follow every `SYNTHETIC_ID_STEP`
#: (valid int64 ids, none equal to a real star of `build_archive`).
SYNTHETIC_ID_START = 6_000_000_000_000_000_001
SYNTHETIC_ID_STEP = 1_000_003
#: Largest relative change of the RVS flux and of the XP coefficients between variants.
SYNTHETIC_SCALE = 0.02


def synthetic_ids(n: int) -> np.ndarray:
    """The source_ids (sorted int64) of `build_synthetic_archive` with ``n`` stars."""
    return SYNTHETIC_ID_START + SYNTHETIC_ID_STEP * np.arange(n, dtype=np.int64)


class ClonedProducts(Mapping):
    """source_id -> product text of the synthetic stars, made on demand.

    Parameters
    ----------
    ids : array of int
        The stars, in their order (``make`` receives the position).
    make : callable
        ``make(i, source_id) -> str``.
    """

    def __init__(self, ids, make: Callable[[int, int], str]):
        self._index = {int(s): i for i, s in enumerate(ids)}
        self._make = make

    def __getitem__(self, sid) -> str:
        return self._make(self._index[int(sid)], int(sid))

    def __contains__(self, sid) -> bool:
        return int(sid) in self._index

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def _factors(n_variants: int) -> list[float]:
    """Multiplicative perturbations of the variants, evenly within +-`SYNTHETIC_SCALE`."""
    return [float(f) for f in 1 + SYNTHETIC_SCALE * np.linspace(-1, 1, n_variants)]


def _rvs_variants(real: RealProducts,
                  n_variants: int) -> list[tuple[str, str, list[list[str]]]]:
    """For each real RVS DataLink CSV product: its header line, solution_id and, per
    variant, the line tails after ``dec`` (wavelength, flux, flux_error, the transit and
    CCD counts) with the flux scaled (float32 text, as the archive writes it; empty cells,
    i.e. NaN, stay empty)."""
    out = []
    for _, text in sorted(rvs_products(real).items()):
        header, *lines = text.rstrip("\n").split("\n")
        rows = [line.split(",") for line in lines]
        variants = []
        for f in _factors(n_variants):
            variants.append([",".join([r[4], str(np.float32(float(r[5]) * f)) if r[5] else "",
                                       *r[6:]]) for r in rows])
        out.append((header, rows[0][1], variants))
    return out


def _xp_variants(real: RealProducts, n_variants: int) -> list[list[tuple[str, str]]]:
    """For each real XP_CONTINUOUS row: per variant, (header, line) with the BP and RP
    coefficients scaled (their errors and correlations, and every other cell, unchanged)."""
    out = []
    for header, line in xp_rows(real):
        names = header.split(",")
        cells = next(csv.reader([line]))
        variants = []
        for f in _factors(n_variants):
            new = line
            for band in ("bp", "rp"):
                old = cells[names.index(f"{band}_coefficients")]
                values = [float(v) for v in old.strip("()").split(",")]
                new = new.replace(old, "(" + ", ".join(repr(v * f) for v in values) + ")", 1)
            variants.append((header, new))
        out.append(variants)
    return out


def build_synthetic_archive(n: int, real, *, seed: int = 0, n_variants: int = 8,
                            zip_level: int | None = 1, references: bool = False) -> Archive:
    """A loopback archive of ``n`` stars with format-faithful products.

    Every star (source_id from `synthetic_ids`) is a clone of the real data of
    `build_archive`: its gaia_source row is one of the recorded rows (all 152 columns,
    units and types of the archive's VOTable) with source_id, ra and dec replaced and the
    G, BP and RP magnitudes shifted (normal, sigma 0.02 mag); its RVS DataLink CSV is one
    of the real products (same header, 2401 lines, solution_id, transit counts) with its
    own source_id/ra/dec and the flux scaled by one of ``n_variants`` factors within
    +-`SYNTHETIC_SCALE`; its XP_CONTINUOUS CSV row is one of the real rows with its
    source_id and the BP/RP coefficients scaled likewise. Template and variant follow from
    the star's position, so the content is deterministic for given ``n`` and ``seed``.
    The products are made when requested (`ClonedProducts`), so memory does not grow with
    ``n`` beyond the tables. ``iii/286/catalog`` holds one APOGEE row per star, all
    passing the quality cuts (`synthetic_apogee`), so that ``fetch gaia --training
    apogee`` selects every star.

    The ESA service declares TAP uploads without an upload limit (the real service's
    limits are not recorded here), so a selection goes in uploads of
    ``conf.tap_upload_max_ids``.

    Parameters
    ----------
    n : int
        Number of stars.
    real : RealProducts or path-like
        The real products it clones.
    seed : int
        Seed of the positions, magnitude shifts and labels.
    n_variants : int
        Perturbed variants of each real product.
    zip_level : int or None
        zlib level of the DataLink zips (None: zlib's default, 6).
    references : bool
        Also serve the reference tables of the validation for these stars
        (`~gaiarvs_cnn.archives.loopback.reference_tables.synthetic_references`: GALAH,
        K2-GAP, clusters, GSP-Spec/Phot, the published catalogue) and the VizieR Gaia DR3
        table of the XMatch service.

    Returns
    -------
    Archive
        Not yet served (see `serve`).
    """
    ids = synthetic_ids(n)
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    products = RealProducts(getattr(real, "root", real))
    recorded = Table.read(products.gaia_source_vot, format="votable", use_names_over_ids=True)
    source = recorded[np.arange(n) % len(recorded)]
    source["source_id"][:] = ids
    source["ra"][:] = ra
    source["dec"][:] = dec
    shift = rng.normal(0.0, 0.02, n)
    for band in ("g", "bp", "rp"):
        source[f"phot_{band}_mean_mag"][:] = source[f"phot_{band}_mean_mag"] + shift

    rvs_templates = _rvs_variants(products, n_variants)
    xp_templates = _xp_variants(products, n_variants)

    def rvs(i: int, sid: int) -> str:
        header, solution, variants = rvs_templates[i % len(rvs_templates)]
        tails = variants[(i // len(rvs_templates)) % n_variants]
        prefix = f"{sid},{solution},{float(ra[i])!r},{float(dec[i])!r},"
        return header + "\n" + prefix + ("\n" + prefix).join(tails) + "\n"

    def xp(i: int, sid: int) -> str:
        variants = xp_templates[i % len(xp_templates)]
        return xp_product(sid, *variants[(i // len(xp_templates)) % n_variants])

    arc = Archive(tables={"gaiadr3.gaia_source": source,
                          "iii/286/catalog": synthetic_apogee(ids, seed=seed)},
                  rvs=ClonedProducts(ids, rvs), xp=ClonedProducts(ids, xp),
                  zip_level=zip_level)
    if references:
        arc.tables.update(synthetic_references(ids, ra, dec, seed=seed))
        arc.tables["i/355/gaiadr3"] = Table({"Source": ids, "RA_ICRS": ra, "DE_ICRS": dec,
                                             "Gmag": source["phot_g_mean_mag"]})
    arc.services["esa"]["upload_limit"] = None
    return arc
