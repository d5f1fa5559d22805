"""Reference-catalogue tables served by the loopback archive (built, not recorded).

Column names and units follow the real tables: VizieR labels where the adapters query by
them (``GaiaEDR3``, ``GaiaDR2``, ``Teff``, ``[M/H]``, ``AFlag``, ``Cluster``, ``proba``...),
the surveys' own names otherwise (APOGEE ``ASPCAP_CHI2``/``FE_H_FLAG``), Gaia archive
names for ``gaiadr3.*`` tables; where each name was checked is recorded in
``tests/data/reference_schemas/`` (README and ``reference_columns.ecsv``).
Every row is chosen to exercise one rule of the adapters; the expected outcome is written
next to it and asserted in ``test_reference.py``.
"""
from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import Table

DEX = u.dex
LOGG = u.dex(u.cm / u.s**2)
#: Gaia DR2 ids of the cluster / K2 rows (invented; mapped to DR3 by dr2_neighbourhood).
DR2 = [111, 222, 333, 444]
#: Ids of reference stars absent from the loopback gaia_source (completing six ids).
EXTRA = [5000000000000000001, 5000000000000000002, 5000000000000000003]


def reference_ids(sky: list[int]) -> list[int]:
    """Six ids used by the reference tables: the sky's stars, then `EXTRA`."""
    return (list(sky) + EXTRA)[:6]


def _apogee(s: list[int]) -> Table:
    # rows: s0 good (SNR 200), s1 good, s2 good, s3 TEFF_ERR 150 (cut), s4 STAR_BAD (cut),
    # s5 good, Gaia id 0 (dropped), s0 again with SNR 80 (duplicate, dropped)
    ids = [s[0], s[1], s[2], s[3], s[4], s[5], 0, s[0]]
    n = len(ids)
    t = Table()
    t["APOGEE"] = [f"2M{i:08d}+0000000" for i in range(n)]
    t["GaiaEDR3"] = np.array(ids, dtype=np.int64)
    t["Teff"] = np.array([4800, 5100, 4500, 4600, 5000, 6000, 5000, 4700.0]) * u.K
    t["e_Teff"] = np.array([50, 60, 40, 150, 50, 70, 50, 55.0]) * u.K
    t["logg"] = np.array([2.5, 3.9, 2.1, 2.4, 4.4, 4.2, 3.0, 2.6]) * LOGG
    t["e_logg"] = np.full(n, 0.05) * LOGG
    t["[M/H]"] = np.array([-0.2, 0.1, -1.0, 0.0, 0.0, -0.3, 0.0, -0.25]) * DEX
    t["e_[M/H]"] = np.array([0.02, 0.02, 0.15, 0.02, 0.02, 0.03, 0.02, 0.02]) * DEX
    t["[a/M]"] = np.array([0.1, 0.0, 0.3, 0.05, 0.0, 0.02, 0.0, 0.1]) * DEX
    t["e_[a/M]"] = np.full(n, 0.03) * DEX
    t["[Fe/H]"] = np.array([-0.25, 0.12, -1.1, 0.0, 0.0, -0.3, 0.0, -0.3]) * DEX
    t["e_[Fe/H]"] = np.array([0.02, 0.02, 0.15, 0.02, 0.02, 0.03, 0.02, 0.02]) * DEX
    # AFlag: the ASPCAPFLAG bitmask as an integer, as third-party code reads VizieR's AFlag
    # (bit 23 = STAR_BAD here); the adapter also accepts flag-name strings
    t["AFlag"] = np.array([0, 0, 0, 0, 1 << 23, 0, 0, 0], dtype=np.int64)
    t["ASPCAP_CHI2"] = np.array([3.0, 4.0, 5.0, 2.0, 3.0, 6.0, 3.0, 3.0])
    t["FE_H_FLAG"] = np.zeros(n, dtype=np.int32)
    t["SNR"] = np.array([200, 150, 120, 300, 100, 90, 100, 80.0])
    return t


def synthetic_apogee(ids, *, seed: int = 0) -> Table:
    """APOGEE rows (the columns of `_apogee`) for the synthetic stars of
    `gaiarvs_cnn.archives.loopback.build_synthetic_archive`: one per id, every one passing
    the quality cuts, labels drawn (``seed``) over the ranges of the paper's training
    sample."""
    rng = np.random.default_rng(seed + 1)
    n = len(ids)
    t = Table()
    t["APOGEE"] = [f"2M{i:08d}+0000000" for i in range(n)]
    t["GaiaEDR3"] = np.asarray(ids, dtype=np.int64)
    t["Teff"] = rng.uniform(3800, 6800, n) * u.K
    t["e_Teff"] = rng.uniform(30, 90, n) * u.K
    t["logg"] = rng.uniform(0.5, 4.9, n) * LOGG
    t["e_logg"] = rng.uniform(0.02, 0.08, n) * LOGG
    mh = rng.uniform(-2.0, 0.5, n)
    t["[M/H]"] = mh * DEX
    t["e_[M/H]"] = rng.uniform(0.01, 0.05, n) * DEX
    t["[a/M]"] = rng.uniform(-0.1, 0.4, n) * DEX
    t["e_[a/M]"] = rng.uniform(0.01, 0.05, n) * DEX
    t["[Fe/H]"] = (mh + rng.normal(0, 0.03, n)) * DEX
    t["e_[Fe/H]"] = rng.uniform(0.01, 0.05, n) * DEX
    t["AFlag"] = np.zeros(n, dtype=np.int64)  # the ASPCAPFLAG bitmask, as in `_apogee`
    t["ASPCAP_CHI2"] = rng.uniform(1.0, 10.0, n)
    t["FE_H_FLAG"] = np.zeros(n, dtype=np.int32)
    t["SNR"] = rng.uniform(70, 500, n)
    return t


def _galah(s: list[int]) -> Table:
    # VizieR labels of J/MNRAS/506/150/stars as third-party code names them (GALAH,
    # GaiaEDR3, Teff, [Fe/H], [alpha/Fe], snrc3iraf, flagsp); flagfeh, flagalphafe and
    # flagguess follow the pattern of flagsp (seen nowhere; see the fixture README).
    # s0 good, s1 flagsp=1 (cut), s2 snr 30 (cut), s3 good, s4 flagguess=1 (cut)
    ids = s[:5]
    t = Table()
    t["GALAH"] = np.arange(5, dtype=np.int64) + 131216001101000
    t["GaiaEDR3"] = np.array(ids, dtype=np.int64)
    t["Teff"] = np.array([4850, 5000, 4400, 4650, 5200.0]) * u.K
    t["e_Teff"] = np.full(5, 80.0) * u.K
    t["logg"] = np.array([2.6, 3.8, 2.0, 2.5, 4.3]) * LOGG
    t["e_logg"] = np.full(5, 0.2) * LOGG
    t["[Fe/H]"] = np.array([-0.22, 0.1, -1.0, 0.05, -0.1]) * DEX
    t["e_[Fe/H]"] = np.full(5, 0.07) * DEX
    t["[alpha/Fe]"] = np.array([0.12, 0.0, 0.3, 0.04, 0.01]) * DEX
    t["e_[alpha/Fe]"] = np.full(5, 0.05) * DEX
    t["flagsp"] = np.array([0, 1, 0, 0, 0], dtype=np.int32)
    t["flagfeh"] = np.zeros(5, dtype=np.int32)
    t["flagalphafe"] = np.zeros(5, dtype=np.int32)
    t["flagguess"] = np.array([0, 0, 0, 0, 1], dtype=np.int32)
    t["snrc3iraf"] = np.array([60, 80, 30, 45, 90.0])
    return t


def _dr2_neighbourhood(s: list[int]) -> Table:
    # 111 -> s0 (1 mas) and s1 (50 mas): the closest, s0, is kept; 222 -> s2;
    # 333 -> no neighbour; 444 -> s3
    return Table({"dr2_source_id": np.array([111, 111, 222, 444], dtype=np.int64),
                  "dr3_source_id": np.array([s[1], s[0], s[2], s[3]], dtype=np.int64),
                  "angular_distance": np.array([50.0, 1.0, 2.0, 0.5]) * u.mas,
                  "magnitude_difference": np.array([0.1, 0.3, 0.0, 0.01]) * u.mag,
                  "proper_motion_propagation": np.array([True] * 4)})


def _clusters() -> Table:
    return Table({"Cluster": ["NGC_2539", "NGC_2539", "Melotte_22", "Melotte_22"],
                  "GaiaDR2": np.array(DR2, dtype=np.int64),
                  "proba": np.array([1.0, 0.8, 0.9, 0.5])})


def _k2gap(s: list[int], positions: dict) -> Table:
    # 444 has no numax (dropped). The rows lie 0.4 arcsec north of the Gaia DR3 stars their
    # DR2 ids map to (111 -> s0, 222 -> s2, 444 -> s3), so that a positional cross-match
    # (CDS XMatch) finds the same stars as the DR2 -> DR3 mapping.
    ra, dec = zip(*(positions.get(i, (0.0, 0.0)) for i in (s[0], s[2], s[3])))
    return Table({"EPIC": np.array([201000001, 201000002, 201000003], dtype=np.int64),
                  "RAJ2000": np.array(ra) * u.deg,
                  "DEJ2000": (np.array(dec) + 0.4 / 3600) * u.deg,
                  "GaiaDR2": np.array([111, 222, 444], dtype=np.int64),
                  "numax": np.array([35.0, 60.0, np.nan]) * u.uHz,
                  "e_numax": np.array([1.0, 1.5, np.nan]) * u.uHz,
                  "dnu": np.array([4.1, 6.0, np.nan]) * u.uHz,
                  "e_dnu": np.array([0.05, 0.08, np.nan]) * u.uHz})


def _astrophysical_parameters(s: list[int]) -> Table:
    # GSP-Spec: s1 has none (NaN); s2 has a non-zero flag among the first 13 digits
    n = len(s)
    flags = ["0" * 41] * n
    flags[2] = "0" * 12 + "1" + "0" * 28
    spec_teff = np.array([4790, np.nan, 4550, 4620, 5050, 5900.0])[:n]
    return Table({
        "source_id": np.array(s, dtype=np.int64),
        "teff_gspspec": spec_teff * u.K, "logg_gspspec": np.full(n, 2.4) * LOGG,
        "mh_gspspec": np.full(n, -0.1) * DEX, "alphafe_gspspec": np.full(n, 0.1) * DEX,
        "fem_gspspec": np.full(n, -0.05) * DEX, "flags_gspspec": flags,
        "teff_gspphot": np.linspace(4500, 6000, n) * u.K,
        "logg_gspphot": np.full(n, 3.0) * LOGG, "mh_gspphot": np.full(n, -0.3) * DEX,
        "classlabel_espels": np.ma.masked_all(n, dtype="U8")})


def _published(s: list[int]) -> Table:
    # the paper's Table 2 layout: sourceid, labels with e*/sigma_*, integer flag_boundary
    n = len(s)
    t = Table({"sourceid": np.array(s, dtype=np.int64)})
    values = {"teff": (4800.0, u.K), "logg": (2.5, LOGG), "mh": (-0.2, DEX), "feh": (-0.25, DEX),
              "alpham": (0.1, DEX)}
    for k, (v, unit) in values.items():
        t[k] = np.full(n, v) * unit
        t[f"e{k}"] = np.full(n, 0.01 * abs(v) + 0.01) * unit
        t[f"sigma_{k}"] = np.full(n, 0.02 * abs(v) + 0.02) * unit
    t["flag_boundary"] = np.array([0, 10, 1000000, 0, 11000000, 1][:n], dtype=np.int64)
    return t


def reference_tables(sky: list[int], positions: dict | None = None) -> dict[str, Table]:
    """The loopback archive's reference tables, keyed by lower-case table name
    (``positions``: source_id -> (ra, dec) of the loopback gaia_source stars, deg)."""
    sky = reference_ids(sky)
    positions = positions or {}
    return {"iii/286/catalog": _apogee(sky), "j/mnras/506/150/stars": _galah(sky),
            "j/a+a/640/a1/nodup": _clusters(), "j/apj/926/191/table2": _k2gap(sky, positions),
            "gaiadr3.dr2_neighbourhood": _dr2_neighbourhood(sky),
            "gaiadr3.astrophysical_parameters": _astrophysical_parameters(sky),
            "gaiadr3_contrib.cnn_gaia_rvs_catalog": _published(sky)}


def synthetic_references(ids, ra, dec, *, seed: int = 0) -> dict[str, Table]:
    """Reference tables for the synthetic stars of ``loopback.build_synthetic_archive``
    (``references=True``): every row passes the adapters' quality cuts, and the labels are
    the star's `synthetic_apogee` labels plus noise (seeded), so that a whole run can be
    validated on loopback. GALAH holds every 3rd star, GSP-Spec/Phot every 2nd, the
    published catalogue every star, K2-GAP every 5th (DR2 ids mapped by
    ``gaiadr3.dr2_neighbourhood``), the clusters every 7th star in 3 clusters.

    Parameters
    ----------
    ids, ra, dec : array
        Source ids and positions (deg) of the synthetic gaia_source.
    seed : int
        The archive's seed (the APOGEE labels are ``synthetic_apogee(ids, seed=seed)``).

    Returns
    -------
    dict of str to Table
        Keyed by lower-case table name, as `reference_tables`.
    """
    ids = np.asarray(ids, dtype=np.int64)
    apogee = synthetic_apogee(ids, seed=seed)
    rng = np.random.default_rng(seed + 2)
    teff, logg = np.asarray(apogee["Teff"]), np.asarray(apogee["logg"])
    mh, am, feh = (np.asarray(apogee[c]) for c in ("[M/H]", "[a/M]", "[Fe/H]"))

    def noisy(x, s, rows):
        return x[rows] + rng.normal(0, s, rows.size)

    g = np.arange(0, ids.size, 3)
    galah = Table()
    galah["GALAH"] = np.arange(g.size, dtype=np.int64) + 170000000000000
    galah["GaiaEDR3"] = ids[g]
    galah["Teff"] = noisy(teff, 60, g) * u.K
    galah["e_Teff"] = np.full(g.size, 80.0) * u.K
    galah["logg"] = noisy(logg, 0.1, g) * LOGG
    galah["e_logg"] = np.full(g.size, 0.2) * LOGG
    galah["[Fe/H]"] = noisy(feh, 0.05, g) * DEX
    galah["e_[Fe/H]"] = np.full(g.size, 0.07) * DEX
    galah["[alpha/Fe]"] = noisy(am, 0.04, g) * DEX
    galah["e_[alpha/Fe]"] = np.full(g.size, 0.05) * DEX
    for flag in ("flagsp", "flagfeh", "flagalphafe", "flagguess"):
        galah[flag] = np.zeros(g.size, dtype=np.int32)
    galah["snrc3iraf"] = rng.uniform(45, 150, g.size)

    s = np.arange(0, ids.size, 2)
    gsp = Table({
        "source_id": ids[s],
        "teff_gspspec": noisy(teff, 100, s) * u.K, "logg_gspspec": noisy(logg, 0.2, s) * LOGG,
        "mh_gspspec": noisy(mh, 0.1, s) * DEX, "alphafe_gspspec": noisy(am, 0.05, s) * DEX,
        "fem_gspspec": noisy(feh - mh, 0.05, s) * DEX, "flags_gspspec": ["0" * 41] * s.size,
        "teff_gspphot": noisy(teff, 150, s) * u.K, "logg_gspphot": noisy(logg, 0.3, s) * LOGG,
        "mh_gspphot": noisy(mh, 0.3, s) * DEX,
        "classlabel_espels": np.ma.masked_all(s.size, dtype="U8")})

    published = Table({"sourceid": ids})
    for k, (x, sig, unit) in {"teff": (teff, 50, u.K), "logg": (logg, 0.08, LOGG),
                              "mh": (mh, 0.05, DEX), "feh": (feh, 0.05, DEX),
                              "alpham": (am, 0.03, DEX)}.items():
        rows = np.arange(ids.size)
        published[k] = noisy(x, sig, rows) * unit
        published[f"e{k}"] = np.full(ids.size, sig / 2) * unit
        published[f"sigma_{k}"] = np.full(ids.size, sig) * unit
    published["flag_boundary"] = np.zeros(ids.size, dtype=np.int64)

    # K2-GAP and the clusters name Gaia DR2 ids, mapped to DR3 by dr2_neighbourhood
    k = np.arange(0, ids.size, 5)
    c = np.arange(1, ids.size, 7)
    dr2 = {int(i): 900_000_000 + n for n, i in enumerate(np.union1d(ids[k], ids[c]))}
    numax = 10 ** (logg[k] - 4.44) * 3090 * (teff[k] / 5777) ** -0.5
    k2 = Table({"EPIC": np.arange(k.size, dtype=np.int64) + 210000001,
                "RAJ2000": np.asarray(ra)[k] * u.deg, "DEJ2000": np.asarray(dec)[k] * u.deg,
                "GaiaDR2": np.array([dr2[int(i)] for i in ids[k]], dtype=np.int64),
                "numax": numax * u.uHz, "e_numax": 0.02 * numax * u.uHz,
                "dnu": 0.263 * numax ** 0.772 * u.uHz,
                "e_dnu": 0.01 * 0.263 * numax ** 0.772 * u.uHz})
    clusters = Table({"Cluster": np.array(["NGC_0001", "NGC_0002", "NGC_0003"])[
                          np.arange(c.size) % 3],
                      "GaiaDR2": np.array([dr2[int(i)] for i in ids[c]], dtype=np.int64),
                      "proba": np.full(c.size, 0.9)})
    pairs = np.array(sorted(dr2.items()), dtype=np.int64).reshape(-1, 2)
    neighbourhood = Table({"dr2_source_id": pairs[:, 1], "dr3_source_id": pairs[:, 0],
                           "angular_distance": np.full(len(pairs), 1.0) * u.mas,
                           "magnitude_difference": np.full(len(pairs), 0.01) * u.mag,
                           "proper_motion_propagation": np.ones(len(pairs), dtype=bool)})
    return {"j/mnras/506/150/stars": galah, "gaiadr3.astrophysical_parameters": gsp,
            "gaiadr3_contrib.cnn_gaia_rvs_catalog": published, "j/apj/926/191/table2": k2,
            "j/a+a/640/a1/nodup": clusters, "gaiadr3.dr2_neighbourhood": neighbourhood}
