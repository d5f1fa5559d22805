"""The t-SNE reference of ``flag_boundary`` digit 8 (paper Sect. 5.1): `TSNEReference`.

Following the paper (Sect. 5.1, after Ambrosch et al. 2023), spectra are reduced to
``n_pca`` (50) principal components and embedded in 2-d t-SNE maps at perplexities 30,
50, 75 and 100, with **one** nearest-neighbour graph (``k = 3 x max perplexity``) reused
for every perplexity (`openTSNE.affinity.PerplexityBasedNN.set_perplexity`).

*Threshold rule.* In each map, the training stars' leave-one-out distance to their
nearest *other* training star defines the map's scale; the threshold ``d_thr(p)`` is its
``MAP_QUANTILE`` (99 %) quantile. An observed spectrum is training-like at perplexity
``p`` if its nearest training star in the map is closer than ``d_thr(p)``; it is
training-like only if this holds at **every** perplexity.

*Scaling.* `TSNEReference` embeds the training set once (at training time, stored in
the model bundle) and places new spectra in the fixed training maps, so the cost is
linear in the number of observed stars and chunks are independent (resumable, parallel).
Placing cannot create new islands for spectra unlike any training spectrum, so the
reference adds the same geometric rule in the space t-SNE starts from: a spectrum whose
nearest training spectrum (in the 50-PC space) is farther than the 99 % quantile of the
training stars' own nearest-neighbour distances (times ``PCA_DISTANCE_FACTOR`` = 1) is not
training-like. Both distances are noise-corrected, ``d_c^2 = d^2 - n_pca * sigma^2`` with
``sigma`` the spectrum's pixel noise from its second differences (`estimate_noise`).

*Placement.* A new spectrum is placed at the median map position of its ``PLACEMENT_K``
(25, at most the perplexity) nearest training spectra in PC space, the point where
`openTSNE.TSNEEmbedding.transform` starts; ``n_iter`` > 0 optimises it further with
``transform`` steps. `joint_training_like` runs the paper's joint embedding (training and
observed spectra together; cost super-linear, for up to ~10^4-10^5 spectra). How the two
agree, and what each costs: ``benchmarks/tsne_agreement.py``.

*Reproducibility.* The PCA of `TSNEReference.fit` and `joint_training_like` and the
projection of new spectra run on one BLAS thread: multi-threaded BLAS sums in an order
that depends on the thread count, and t-SNE turns last-bit differences into a different
map (the figure test's map differed between 1 and 2 OpenBLAS threads). For the same reason
the projection is computed in float64 and rounded to float32 (`_project`), neighbour
distances are recomputed element by element (`_exact_neighbours`) and the initialisation
is the first two PCs: the maps and classes are then bit-identical with another CPU's BLAS
and numpy SIMD kernels (AVX2, AVX-512; tests/flags/test_flags.py).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from astropy import log
from scipy import sparse
from scipy.spatial import cKDTree

from ..exceptions import InputDataError, ModelBundleError
from ..preprocess import fill_nan_pixels_masked
from ..utils.atomic import atomic_directory

__all__ = [
    "DEFAULT_PERPLEXITIES",
    "TSNEReference",
    "joint_training_like",
    "estimate_noise",
    "check_reference_size",
]

#: Perplexities of the paper's four t-SNE maps (Sect. 5.1).
DEFAULT_PERPLEXITIES = (30, 50, 75, 100)
#: Quantile of the training stars' own nearest-neighbour distances used as threshold.
MAP_QUANTILE = 0.99
#: Multiplier of the 50-PC nearest-training-neighbour threshold (transform path).
PCA_DISTANCE_FACTOR = 1.0

#: Maps of fewer points use Barnes-Hut gradients, larger ones FFT interpolation.
FFT_MIN_POINTS = 10_000
#: ``transform`` optimisation steps of the production placement: 0 places each new
#: spectrum at the median map position of its ``PLACEMENT_K`` nearest training spectra,
#: which is where ``openTSNE``'s ``transform`` starts (see "Placement" above).
DEFAULT_PLACEMENT_ITER = 0
#: Nearest training spectra whose map positions give the median placement
#: (`openTSNE.TSNEEmbedding.transform`'s ``k``); capped at the map's perplexity.
PLACEMENT_K = 25

_FORMAT_VERSION = 2
_ARRAYS = "tsne_reference.npz"
_MANIFEST = "tsne_reference.json"


def _one_blas_thread():
    """Context: BLAS on one thread, so PC coordinates do not depend on the core count.

    Multi-threaded BLAS sums in an order that depends on the number of threads; the last
    bits of the PCA then differ between machines and t-SNE, being chaotic, turns them
    into a different map (measured: the 300-spectrum figure reference differs between
    ``OPENBLAS_NUM_THREADS=1`` and ``2``).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _n_jobs() -> int:
    """openTSNE / kNN threads: ``conf.threads`` if set, else 1.

    openTSNE's worker threads busy-wait: on a shared, loaded machine one thread was
    measured 12x faster than two (transform of 60 spectra: 0.27 s against 3.2 s).
    """
    from ..settings import conf

    return int(conf.threads) if int(conf.threads) > 0 else 1


def _placement_workers(n_maps: int) -> int:
    """Threads placing new spectra in the maps (one map per thread; the result does not
    depend on it): all cores when ``conf.threads`` is 0, else ``conf.threads``."""
    from ..settings import conf

    threads = int(conf.threads) if int(conf.threads) > 0 else (os.cpu_count() or 1)
    return max(1, min(n_maps, threads))


def _placement_k(perplexity: float) -> int:
    """Neighbours of the median placement: ``PLACEMENT_K``, at most the perplexity.

    The perplexity is the effective number of neighbours a map preserves; in maps of small
    perplexity (tests: 5, 10) 25 neighbours span several islands and their median falls
    between them (measured on the 300-spectrum test reference: 79 % of thin-disc stars
    training-like with 25 neighbours, 94 % with 5, 99 % after 100 ``transform`` steps).
    """
    return max(1, min(PLACEMENT_K, int(perplexity)))


def _gradient_method(n: int) -> str:
    """Barnes-Hut below ``FFT_MIN_POINTS`` points (faster there), FFT interpolation above."""
    return "bh" if n < FFT_MIN_POINTS else "fft"


#: Rows per block of the float64 projection (bounds its memory: ~80 MB).
_PROJECT_ROWS = 4096


def _project(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """PC coordinates of spectra ``x``, the same on every CPU (float32).

    BLAS kernels differ between CPUs (AVX2, AVX-512) in the order they sum, and float32
    sums of 2401 pixels differ in their last bits; t-SNE and the thresholds then see
    different inputs. The product is computed in float64 (one BLAS thread) and rounded to
    float32: float64 rounding errors (~1e-16) are far below half a float32 unit (~6e-8), so
    the rounded values agree on every CPU except for a value within 1e-16 of a float32
    rounding boundary (probability ~1e-8 per value).
    """
    mean64 = np.asarray(mean, dtype=np.float64)
    comp64 = np.asarray(components, dtype=np.float64).T
    out = np.empty((len(x), comp64.shape[1]), dtype=np.float32)
    with _one_blas_thread():
        for start in range(0, len(x), _PROJECT_ROWS):
            block = np.asarray(x[start:start + _PROJECT_ROWS], dtype=np.float64) - mean64
            out[start:start + _PROJECT_ROWS] = block @ comp64
    return out


def _exact_neighbours(points: np.ndarray, reference: np.ndarray,
                      idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours ``idx`` of ``points`` in ``reference``, ordered by exact distance.

    scikit-learn's brute-force search computes distances with BLAS (``|a|^2 + |b|^2 -
    2 a.b``), whose last bits depend on the CPU; the order of near-equal neighbours and
    the distance to the nearest one then do too. Here the distances are recomputed
    element by element in float64 (float32 differences and squares are exact in float64,
    and the sum runs over the coordinates in a fixed order), and the neighbours sorted
    by (distance, index).
    """
    points = np.asarray(points, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    sq = np.zeros(idx.shape, dtype=np.float64)
    for dim in range(points.shape[1]):
        diff = reference[idx, dim] - points[:, dim, None]
        sq += diff * diff
    order = np.lexsort((idx, sq), axis=-1)
    idx = np.take_along_axis(idx, order, axis=-1)
    return idx, np.sqrt(np.take_along_axis(sq, order, axis=-1))


def check_reference_size(n: int, perplexities: Sequence[float] = DEFAULT_PERPLEXITIES
                         ) -> None:
    """Refuse a t-SNE reference of too few spectra (before any costly work).

    Parameters
    ----------
    n : int
        Usable training spectra the reference would embed.
    perplexities : sequence of float
        The maps' perplexities.

    Raises
    ------
    gaiarvs_cnn.exceptions.InputDataError
        If ``n`` is not above ``3 x max(perplexities) + 1`` (one shared neighbour graph).
    """
    need = int(3 * max(perplexities)) + 2
    if n < need:
        raise InputDataError(
            f"{n} usable training spectra; the t-SNE reference needs at least {need} "
            f"(more than 3 x the largest perplexity, {max(perplexities):g}). Use more "
            "training stars, smaller perplexities, or no t-SNE reference (tsne=False; "
            "command line: --no-tsne).")


def _loo_nn_quantile(points: np.ndarray, quantile: float) -> float:
    """``quantile`` of each point's distance to its nearest *other* point."""
    dist, _ = cKDTree(points).query(points, k=2)
    return float(np.quantile(dist[:, 1], quantile))


def _knn_graph(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) of the exact ``k`` nearest other points of each point."""
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=k, n_jobs=_n_jobs()).fit(x).kneighbors()[1]
    return _exact_neighbours(x, x, idx)


def _embed_all_perplexities(x: np.ndarray, perplexities: Sequence[float], seed: int,
                            n_iter: tuple[int, int]) -> dict[float, np.ndarray]:
    """t-SNE maps of ``x`` at each perplexity, from ONE kNN graph (k = 3 max perplexity)."""
    from openTSNE import TSNEEmbedding, initialization
    from openTSNE.affinity import PerplexityBasedNN
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    pmax = max(perplexities)
    k = min(len(x) - 1, int(3 * pmax))
    idx, dist = _knn_graph(x, k)
    aff = PerplexityBasedNN(knn_index=PrecomputedNeighbors(idx, dist), perplexity=pmax,
                            n_jobs=_n_jobs())
    # ``x`` holds principal components (largest variance first): its first two columns
    # are openTSNE's PCA initialisation, without a second, CPU-dependent SVD.
    init = initialization.jitter(initialization.rescale(np.array(x[:, :2], dtype=np.float64)),
                                 random_state=seed)
    maps = {}
    for p in sorted(perplexities, reverse=True):
        aff.set_perplexity(p)
        emb = TSNEEmbedding(init, aff, negative_gradient_method=_gradient_method(len(x)),
                            n_jobs=_n_jobs(), random_state=seed)
        emb = emb.optimize(n_iter=n_iter[0], exaggeration=12, momentum=0.5)
        emb = emb.optimize(n_iter=n_iter[1], momentum=0.8)
        arr = np.asarray(emb, dtype=np.float64)
        maps[p] = arr - (arr.max(axis=0) + arr.min(axis=0)) / 2
    return {p: maps[p] for p in perplexities}


class _FixedReferenceAffinities:
    """openTSNE affinities of new points to a fixed training set (for ``transform``).

    One exact kNN query (``k = 3 x max perplexity``) per set of new points is cached and
    sliced for every perplexity, so the neighbour graph is shared across the four maps.
    """

    def __init__(self, reference: np.ndarray, k_max: int):
        from sklearn.neighbors import NearestNeighbors  # scikit-learn: 0.8 s, when needed

        self.n_reference = len(reference)
        self.k_max = min(k_max, self.n_reference)
        self._reference = np.asarray(reference)
        self._nn = NearestNeighbors(n_neighbors=self.k_max, n_jobs=_n_jobs()).fit(reference)
        # TSNEEmbedding checks P's shape only; the training map is never re-optimised.
        self.P = sparse.csr_matrix((self.n_reference, self.n_reference))
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def neighbours(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances) of the ``k_max`` nearest training points.

        The last query is cached (keyed on the very array object, which the cache keeps
        alive), so the four perplexities of one chunk share one neighbour search. The
        distances are recomputed exactly and the neighbours ordered by them
        (`_exact_neighbours`), so neither depends on the CPU's BLAS kernels.
        """
        if self._cache is None or self._cache[0] is not data:
            _, idx = self._nn.kneighbors(data, n_neighbors=self.k_max)
            idx, dist = _exact_neighbours(data, self._reference, idx)
            self._cache = (data, idx, dist)
        return self._cache[1], self._cache[2]

    def to_new(self, data, perplexity=30, return_distances=False, k_neighbors="auto"):
        from openTSNE.affinity import joint_probabilities_nn

        k = min(self.k_max, int(3 * perplexity)) if k_neighbors == "auto" else k_neighbors
        idx, dist = self.neighbours(data)
        idx, dist = idx[:, :k], dist[:, :k]
        P = joint_probabilities_nn(idx, dist, [min(perplexity, k / 3)], symmetrize=False,
                                   normalization="point-wise",
                                   n_reference_samples=self.n_reference, n_jobs=_n_jobs())
        return (P, idx, dist) if return_distances else P


class TSNEReference:
    """The training set's t-SNE maps, and the rule that says if a spectrum is training-like.

    Build with `TSNEReference.fit` (once, at training time), store with `save` in the model
    bundle's ``tsne/`` directory (a few MB for ~10^4 training spectra), reload with
    `TSNEReference.load` and classify observed spectra with `training_like`.

    Parameters
    ----------
    perplexities : sequence of float
    pca_mean : ndarray (2401,)
        Mean training spectrum.
    pca_components : ndarray (n_pca, 2401)
        Principal axes of the training spectra.
    train_pca : ndarray (N, n_pca)
        Training spectra in PC space.
    maps : dict of float to ndarray (N, 2)
        Centred t-SNE map of the training set at each perplexity.
    map_threshold : dict of float to float
        ``d_thr(p)``, see the module documentation.
    train_noise : ndarray (N,)
        Pixel noise of each training spectrum (`estimate_noise`).
    pca_threshold : float
        99 % quantile of the training stars' noise-corrected distance to their nearest
        other training star in PC space (flux units), derived from ``train_pca`` and
        ``train_noise``.
    meta : dict, optional
        Provenance (seed, versions, date, n_train, timing).
    """

    def __init__(self, perplexities, pca_mean, pca_components, train_pca, maps,
                 map_threshold, train_noise, meta=None):
        self.perplexities = tuple(float(p) for p in perplexities)
        self.pca_mean = np.asarray(pca_mean, dtype=np.float32)
        self.pca_components = np.asarray(pca_components, dtype=np.float32)
        self.train_pca = np.asarray(train_pca, dtype=np.float32)
        self.maps = {float(p): np.asarray(m, dtype=np.float64) for p, m in maps.items()}
        self.map_threshold = {float(p): float(v) for p, v in map_threshold.items()}
        self.train_noise = np.asarray(train_noise, dtype=np.float32)
        self.meta = dict(meta or {})
        dist, _ = cKDTree(self.train_pca).query(self.train_pca, k=2)
        pca_threshold = np.quantile(
            _noise_corrected(dist[:, 1], self.train_noise, self.train_pca.shape[1]),
            MAP_QUANTILE)
        self.pca_threshold = float(pca_threshold)
        self._affinities: _FixedReferenceAffinities | None = None
        self._trees: dict[float, cKDTree] = {}

    # -- building ------------------------------------------------------------------
    @classmethod
    def fit(cls, flux: np.ndarray, perplexities: Sequence[float] = DEFAULT_PERPLEXITIES,
            n_pca: int = 50, seed: int = 0,
            n_iter: tuple[int, int] = (200, 300)) -> TSNEReference:
        """Embed the training spectra at every perplexity and derive the thresholds.

        Parameters
        ----------
        flux : array (N, 2401)
            Normalised training RVS spectra (NaN pixels are filled as for the network).
        perplexities : sequence of float
            The t-SNE perplexities (paper: 30, 50, 75, 100).
        n_pca : int
            Principal components kept before t-SNE.
        seed : int
            Seed of the PCA, the initialisation and the optimisation.
        n_iter : (int, int)
            Iterations with early exaggeration (12) and without.

        Returns
        -------
        TSNEReference
        """
        t0 = time.perf_counter()
        x, usable = fill_nan_pixels_masked(flux)
        x = x[usable]
        check_reference_size(len(x), perplexities)
        n_pca = min(n_pca, len(x) - 1)
        log.info(f"t-SNE reference: embedding {len(x)} training spectra at perplexities "
                 f"{list(perplexities)}")
        from sklearn.decomposition import PCA

        with _one_blas_thread():
            pca = PCA(n_components=n_pca, svd_solver="randomized",
                      random_state=seed).fit(x.astype(np.float64))
        mean = pca.mean_.astype(np.float32)
        components = pca.components_.astype(np.float32)
        z = _project(x, mean, components)
        maps = _embed_all_perplexities(z, perplexities, seed, n_iter)
        meta = {"seed": int(seed), "n_train": int(len(x)), "n_pca": int(n_pca),
                "n_iter": list(n_iter), "map_quantile": MAP_QUANTILE,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "fit_seconds": round(time.perf_counter() - t0, 1), **_versions()}
        return cls(perplexities, mean, components, z, maps,
                   {p: _loo_nn_quantile(m, MAP_QUANTILE) for p, m in maps.items()},
                   estimate_noise(x), meta)

    # -- persistence ---------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write the reference to ``directory`` (atomically replaced).

        Parameters
        ----------
        directory : path-like
            Destination (e.g. a bundle's ``tsne/``); an existing one is replaced.

        Returns
        -------
        Path
            ``directory``; it holds ``tsne_reference.npz`` and ``tsne_reference.json``.
        """
        directory = Path(directory)
        with atomic_directory(directory) as tmp:
            arrays = {"pca_mean": self.pca_mean, "pca_components": self.pca_components,
                      "train_pca": self.train_pca, "train_noise": self.train_noise}
            arrays.update({f"map_{i}": self.maps[p].astype(np.float32)
                           for i, p in enumerate(self.perplexities)})
            np.savez_compressed(tmp / _ARRAYS, **arrays)
            manifest = {"format_version": _FORMAT_VERSION, "perplexities": self.perplexities,
                        "map_threshold": [self.map_threshold[p] for p in self.perplexities],
                        "pca_threshold": self.pca_threshold, "meta": self.meta}
            (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        return directory

    @classmethod
    def load(cls, directory) -> TSNEReference:
        """Read a reference written by `save`.

        Parameters
        ----------
        directory : path-like
            Directory written by `save`.

        Returns
        -------
        TSNEReference

        Raises
        ------
        ModelBundleError
            If files are missing or of an unknown format version.
        """
        import zipfile

        directory = Path(directory)
        rebuild = ("Rebuild it with TSNEReference.fit(train_flux).save(dir) (train_ensemble "
                   "does this).")
        try:
            manifest = json.loads((directory / _MANIFEST).read_text())
            # every array is read here, inside the try: an object array (refused by
            # allow_pickle=False, never unpickled) or a damaged member is reported, not raised
            with np.load(directory / _ARRAYS, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelBundleError(
                f"Cannot read the t-SNE reference in {directory}: {exc}. {rebuild}") from exc
        if manifest.get("format_version") != _FORMAT_VERSION:
            raise ModelBundleError(
                f"{directory / _MANIFEST} has format version {manifest.get('format_version')}, "
                f"this gaiarvs-cnn reads version {_FORMAT_VERSION}; rebuild the reference.")
        try:
            perp = manifest["perplexities"]
            return cls(perp, arrays["pca_mean"], arrays["pca_components"], arrays["train_pca"],
                       {p: arrays[f"map_{i}"] for i, p in enumerate(perp)},
                       dict(zip(perp, manifest["map_threshold"])),
                       arrays["train_noise"], manifest["meta"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelBundleError(f"The t-SNE reference in {directory} lacks or has a bad "
                                   f"{exc}. {rebuild}") from exc

    # -- classification ------------------------------------------------------------
    @property
    def n_train(self) -> int:
        """Number of training spectra in the maps."""
        return len(self.train_pca)

    def project(self, flux: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project spectra on the training principal components.

        Parameters
        ----------
        flux : array (N, 2401)
            Normalised RVS spectra (NaN pixels are filled).

        Returns
        -------
        z : ndarray (N, n_pca)
            PC coordinates (flux units).
        noise : ndarray (N,)
            Pixel noise (`estimate_noise`).
        usable : ndarray of bool (N,)
            False for spectra without finite continuum flux.
        """
        x, usable = fill_nan_pixels_masked(flux)
        return _project(x, self.pca_mean, self.pca_components), estimate_noise(x), usable

    @property
    def affinities(self) -> _FixedReferenceAffinities:
        """Affinities of new spectra to the training set (one shared kNN index)."""
        if self._affinities is None:
            self._affinities = _FixedReferenceAffinities(self.train_pca,
                                                          int(3 * max(self.perplexities)))
        return self._affinities

    def _centred_map(self, perplexity: float) -> np.ndarray:
        # transform() re-centres the reference in place, as done here: a fresh copy per
        # call keeps every chunk's placement independent of earlier calls (resumable).
        m = np.array(self.maps[perplexity], dtype=np.float64)
        m -= (np.max(m, axis=0) + np.min(m, axis=0)) / 2
        return m

    def place(self, z: np.ndarray, perplexity: float,
              n_iter: int = DEFAULT_PLACEMENT_ITER) -> np.ndarray:
        """Place PC-space points in the training map.

        Parameters
        ----------
        z : ndarray (N, n_pca)
            PC coordinates from `project`.
        perplexity : float
            One of ``perplexities``.
        n_iter : int
            ``transform`` optimisation steps; 0 (default) keeps the starting point of
            ``transform``, the median map position of the ``PLACEMENT_K`` nearest training
            spectra in PC space (computed here without openTSNE).

        Returns
        -------
        ndarray (N, 2)
            Positions in the frame of the centred training map (see `map_distance`).
        """
        from openTSNE import TSNEEmbedding

        p = float(perplexity)
        if int(n_iter) <= 0:
            idx = self.affinities.neighbours(z)[0][:, :_placement_k(p)]
            return np.ascontiguousarray(np.median(self._centred_map(p)[idx], axis=1))
        emb = TSNEEmbedding(self._centred_map(p), self.affinities,
                            negative_gradient_method=_gradient_method(self.n_train),
                            n_jobs=_n_jobs(), random_state=int(self.meta.get("seed", 0)))
        pos = emb.transform(z, perplexity=p, n_iter=n_iter)
        return np.asarray(pos, dtype=np.float64)

    def map_distance(self, positions: np.ndarray, perplexity: float) -> np.ndarray:
        """Distance of map positions to the nearest training star.

        Parameters
        ----------
        positions : ndarray (N, 2)
            From `place`.
        perplexity : float
            The map.

        Returns
        -------
        ndarray (N,)
            Distances in map units.
        """
        p = float(perplexity)
        if p not in self._trees:
            self._trees[p] = cKDTree(self._centred_map(p))
        return self._trees[p].query(positions, k=1)[0]

    def classify(self, flux: np.ndarray,
                 n_iter: int = DEFAULT_PLACEMENT_ITER) -> dict[str, np.ndarray]:
        """Every criterion of `training_like`, per star.

        Parameters
        ----------
        flux : array (N, 2401)
            Normalised RVS spectra.
        n_iter : int
            ``transform`` steps per perplexity (0: median placement, see `place`).

        Returns
        -------
        dict
            ``usable``, ``noise``, ``pca_distance`` (noise-corrected) and ``like_pca``
            (N,); for each perplexity ``p``, ``position_<p>`` (N, 2), ``map_distance_<p>``
            and ``like_<p>``; and ``training_like`` (all criteria).
        """
        z, noise, usable = self.project(flux)
        pca_dist = _noise_corrected(self.affinities.neighbours(z)[1][:, 0], noise, z.shape[1])
        out = {"usable": usable, "noise": noise, "pca_distance": pca_dist,
               "like_pca": pca_dist <= PCA_DISTANCE_FACTOR * self.pca_threshold}
        like = usable & out["like_pca"]
        for p in self.perplexities:     # build the map trees before the threads start
            self.map_distance(np.zeros((0, 2)), p)
        workers = _placement_workers(len(self.perplexities)) if n_iter > 0 else 1
        with ThreadPoolExecutor(workers) as pool:
            placed = list(pool.map(lambda p: self.place(z, p, n_iter=n_iter), self.perplexities))
        for p, pos in zip(self.perplexities, placed):
            d = self.map_distance(pos, p)
            out[f"position_{p:g}"] = pos
            out[f"map_distance_{p:g}"] = d
            out[f"like_{p:g}"] = d <= self.map_threshold[p]
            like &= out[f"like_{p:g}"]
        out["training_like"] = like
        return out

    def training_like(self, flux: np.ndarray,
                      n_iter: int = DEFAULT_PLACEMENT_ITER) -> np.ndarray:
        """True where a spectrum is training-like at every perplexity (module docs).

        Parameters
        ----------
        flux : array (N, 2401)
            Normalised RVS spectra; NaN pixels are filled, all-NaN spectra are ``False``.
        n_iter : int
            ``transform`` optimisation steps per perplexity (0: median placement).

        Returns
        -------
        ndarray of bool, shape (N,)
        """
        if len(np.atleast_2d(flux)) == 0:
            return np.zeros(0, dtype=bool)
        return self.classify(flux, n_iter=n_iter)["training_like"]


def estimate_noise(flux: np.ndarray) -> np.ndarray:
    """Robust per-spectrum pixel noise from second differences.

    Parameters
    ----------
    flux : array (N, npix)
        Spectra without NaN (flux units).

    Returns
    -------
    ndarray (N,)
        Noise standard deviation per pixel (flux units).

    Notes
    -----
    For white noise of standard deviation sigma, ``f[i-1] - 2 f[i] + f[i+1]`` has standard
    deviation ``sqrt(6) sigma``; RVS lines span ~7 pixels, so their curvature barely
    contributes to the median absolute value used here.
    """
    f = np.atleast_2d(np.asarray(flux, dtype=np.float32))
    d2 = f[:, :-2] - 2.0 * f[:, 1:-1] + f[:, 2:]
    return 1.4826 * np.median(np.abs(d2), axis=1) / np.sqrt(6.0)


def _noise_corrected(distance: np.ndarray, noise: np.ndarray, n_dim: int) -> np.ndarray:
    """Distance with the star's own expected noise contribution removed (>= 0)."""
    return np.sqrt(np.clip(np.square(distance) - n_dim * np.square(noise), 0.0, None))


def _versions() -> dict:
    import openTSNE
    import sklearn

    from ..version import __version__

    return {"gaiarvs_cnn": __version__, "openTSNE": openTSNE.__version__,
            "sklearn": sklearn.__version__}


def joint_training_like(train_flux: np.ndarray, obs_flux: np.ndarray,
                        perplexities: Sequence[float] = DEFAULT_PERPLEXITIES,
                        n_pca: int = 50, seed: int = 0,
                        n_iter: tuple[int, int] = (200, 300)) -> np.ndarray:
    """The paper's classification: one joint t-SNE of training and observed spectra.

    PCA (``n_pca`` components) is fitted on all spectra, one kNN graph is shared by the
    maps at every perplexity, and an observed star is training-like if, in every map,
    its nearest training star is closer than the 99 % quantile of the training stars'
    own nearest-training-neighbour distances. Cost grows faster than linearly; use it
    for up to ~10^5 spectra and to validate `TSNEReference.training_like`.

    Parameters
    ----------
    train_flux, obs_flux : array (N, 2401)
        Normalised training and observed RVS spectra.
    perplexities : sequence of float
        The maps' perplexities.
    n_pca : int
        Principal components of the joint sample.
    seed : int
        Seed of PCA, initialisation and optimisation.
    n_iter : (int, int)
        Iterations with and without early exaggeration.

    Returns
    -------
    ndarray of bool, shape (len(obs_flux),)
    """
    xt, _ = fill_nan_pixels_masked(train_flux)
    xo, usable = fill_nan_pixels_masked(obs_flux)
    from sklearn.decomposition import PCA

    x = np.concatenate([xt, xo])
    with _one_blas_thread():
        pca = PCA(n_components=min(n_pca, len(x) - 1), svd_solver="randomized",
                  random_state=seed).fit(x.astype(np.float64))
    z = _project(x, pca.mean_.astype(np.float32), pca.components_.astype(np.float32))
    maps = _embed_all_perplexities(z, perplexities, seed, n_iter)
    like = usable.copy()
    nt = len(xt)
    for m in maps.values():
        thr = _loo_nn_quantile(m[:nt], MAP_QUANTILE)
        like &= cKDTree(m[:nt]).query(m[nt:], k=1)[0] <= thr
    return like
