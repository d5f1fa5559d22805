"""Per-star costs of the stages of a run: the one home of the cost model's constants.

``gaiarvs-cnn run CONFIG --plan`` multiplies these by the stars of each stage. Each
constant says which benchmark measured it; re-running that benchmark is how to update it
(``benchmarks/bench_costmodel.py`` -> ``results/costmodel.json``,
``bench_fetch_rehearsal.py`` -> ``fetch_rehearsal.json``, ``bench_model.py`` ->
``model.json``). They are loopback and 2-core measurements: network numbers are the bytes
the archives send (what the real services send is the same format, but their speed is
not measured), core-hours are CPU time, not wall time.
"""
from __future__ import annotations

__all__ = ["DATALINK_BYTES_PER_STAR", "GAIA_SOURCE_BYTES_PER_STAR", "APOGEE_BYTES_PER_ROW",
           "REFERENCE_BYTES_PER_ROW", "REFERENCE_ROWS_PER_ID", "FETCH_CORE_SECONDS_PER_STAR",
           "STORE_BYTES_PER_STAR",
           "TRAIN_CORE_SECONDS_PER_SAMPLE_EPOCH", "ENSEMBLE_CORE_SECONDS_PER_STAR",
           "CHUNK_CORE_SECONDS_PER_STAR", "CATALOGUE_BYTES_PER_STAR", "BULK_BYTES_PER_STAR",
           "train_core_seconds", "predict_core_seconds"]

#: Bytes of the DataLink answers (RVS + XP_CONTINUOUS CSV products, zipped) per star:
#: fetch_rehearsal.json, 2 740 082 826 B for 45 000 stars.
DATALINK_BYTES_PER_STAR = 60_891
#: Bytes of the gaia_source selection (TAP upload join, VOTable) per star selected:
#: fetch_rehearsal.json, 17 044 323 B for 45 000 stars.
GAIA_SOURCE_BYTES_PER_STAR = 379
#: Bytes of the APOGEE DR17 answer (VizieR TAP, VOTable) per row: fetch_rehearsal.json,
#: 22 400 247 B for 45 000 rows.
APOGEE_BYTES_PER_ROW = 498
#: Bytes of a reference answer per row, by kind: the TAP answers (VOTables of the columns
#: each adapter selects, chunk headers included) divided by the rows, measured on the
#: loopback archive (``build_synthetic_archive(4000, references=True)``, 4 000 ids looked
#: up with ``query_reference``; seismic and clusters include the answer of their DR2 ->
#: DR3 mapping).
REFERENCE_BYTES_PER_ROW = {"apogee": 504, "galah": 374, "gsp-spec": 287, "gsp-phot": 159,
                           "published": 445, "seismic": 395, "clusters": 210}
#: Rows of a reference selected by id per star looked up: at most one (the surveys hold
#: a fraction of the catalogue's stars; the real fractions are not measured, so the
#: estimate is an upper bound).
REFERENCE_ROWS_PER_ID = 1.0
#: Client CPU time of ``fetch gaia`` per star (download, unzip, parse, validate, store):
#: fetch_rehearsal.json, 565.26 s for 45 000 stars.
FETCH_CORE_SECONDS_PER_STAR = 565.26 / 45_000
#: Bytes of the HDF5 store per star: fetch_rehearsal.json, 375 759 779 B for 45 000 stars.
STORE_BYTES_PER_STAR = 8_350
#: Bytes of the Gaia DR3 bulk files (RvsMeanSpectrum + XpContinuousMeanSpectrum, gzipped
#: CSV) per star: costmodel.json network_bytes_per_star (rvs_csv + xp_continuous_votable
#: as an upper bound of the gzipped text).
BULK_BYTES_PER_STAR = 276_007 + 23_080
#: Training cost per training sample and epoch of one member, core-seconds:
#: ``paper``: model.json train.pipeline_jit0_bs64_samples_per_s (359.7 samples/s on 2
#: cores); ``demo``: model.json snr_28_members (7 024.1 s on 2 cores for 28 members x
#: 10 epochs x 22 500 training samples).
TRAIN_CORE_SECONDS_PER_SAMPLE_EPOCH = {"paper": 2 / 359.70, "demo": 2 * 7024.1 / (
    28 * 10 * 22_500)}
#: Ensemble inference per star for 28 members, core-seconds: ``paper``: model.json
#: predict.fused_best_stars_per_s (104.3 stars/s on 2 cores); ``demo``: costmodel.json
#: stages.ensemble.cpu_ms_per_star.
ENSEMBLE_CORE_SECONDS_PER_STAR = {"paper": 2 / 104.27, "demo": 0.6035e-3}
#: The rest of a prediction chunk per star (read, cuts, flags, write), core-seconds:
#: costmodel.json stages read + cuts + flags + write_parquet.
CHUNK_CORE_SECONDS_PER_STAR = (0.0325 + 0.1188 + 0.3652 + 0.0031) * 1e-3
#: Bytes of the catalogue per star and format: costmodel.json bytes_per_star (FITS;
#: the VOTable BINARY2 and Parquet files are of the same order).
CATALOGUE_BYTES_PER_STAR = 82


def _network(network: str) -> str:
    return network if network in TRAIN_CORE_SECONDS_PER_SAMPLE_EPOCH else "paper"


def train_core_seconds(n_stars: int, *, network: str, members: int, epochs: int) -> float:
    """Core-seconds of training at most: every member for ``epochs`` epochs on 75 % of
    ``n_stars`` (early stopping ends most members earlier).

    Parameters
    ----------
    n_stars : int
        Labelled training stars.
    network : str
        ``"paper"`` or ``"demo"`` (a custom network is costed as the paper's).
    members, epochs : int
        Ensemble members and maximum epochs.

    Returns
    -------
    float
    """
    per = TRAIN_CORE_SECONDS_PER_SAMPLE_EPOCH[_network(network)]
    return per * 0.75 * n_stars * members * epochs


def predict_core_seconds(n_stars: int, *, network: str, members: int) -> float:
    """Core-seconds of parameterising ``n_stars`` with an ensemble of ``members``.

    Parameters
    ----------
    n_stars : int
    network : str
        ``"paper"`` or ``"demo"``.
    members : int

    Returns
    -------
    float
    """
    ensemble = ENSEMBLE_CORE_SECONDS_PER_STAR[_network(network)] * members / 28
    return n_stars * (ensemble + CHUNK_CORE_SECONDS_PER_STAR)
