"""The saved model bundle: one directory holding everything prediction needs.

Layout::

    manifest.json      every file with its SHA-256, the bundle format and software versions
    metadata.json      training sample description, date, config, splits, seeds, timings
    config.json        the `NetworkConfig`
    scalers.json       the `~gaiarvs_cnn.preprocess.InputScalers` (labels, photometry, XP)
    ranges.json        (lo, hi) of the training sample for each label, G and parallax
    residuals.json     polynomial fits of the running residual dispersion (`ResidualFit`)
    calibration.json   optional: the calibrated dispersion term (`CalibratedDispersion`)
                       per label, fitted on held-out stars (`gaiarvs_cnn.model.calibration`);
                       when present it replaces residuals.json in ``sigma_*``
    members/*.keras    the ensemble members (Keras 3 native format)
    history/*.json     per-member training loss curves
    tsne/              the t-SNE reference (`gaiarvs_cnn.flags.TSNEReference`), optional

Compatibility rules checked by `ModelBundle.load` (refused with a
`~gaiarvs_cnn.exceptions.ModelBundleError` naming the mismatch): same bundle format
version, same Keras and TensorFlow major versions and same numpy major version as the
ones that wrote the bundle; every file listed in the manifest present with its checksum;
every member's input shapes equal to those of the stored config. A different
gaiarvs-cnn version is only logged.

Updates of several files at once (`ModelBundle.write_calibration`: calibration.json,
metadata.json, manifest.json) go through a journal: the new files are written into a hidden
staging directory, which one atomic rename turns into ``.update/`` (the commit point);
they are then moved into place, the manifest last, and ``.update/`` removed. A crash or a
full disk before the commit leaves the old bundle (and a hidden temporary that the manifest
ignores); a crash after it leaves ``.update/``, which `ModelBundle.load` (and every later
update) replays first. A bundle is therefore always either the old or the new one.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import log

from ..constants import LABELS
from ..exceptions import ModelBundleError
from ..preprocess import InputScalers
from ..utils.atomic import (
    is_temporary,
    remove_path,
    temporary_path,
    write_json_atomic,
    write_text_atomic,
)
from ..utils.checksum import sha256_file
from .config import NetworkConfig
from .member_file import load_member, read_member
from .network import input_shapes
from .residuals import CalibratedDispersion, ResidualFit

__all__ = ["ModelBundle", "BUNDLE_FORMAT_VERSION", "software_versions", "demo_bundle_path",
           "read_bundle_id", "read_bundle_config"]

BUNDLE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CALIBRATION = "calibration.json"
#: Journal of a multi-file update (see the module documentation).
JOURNAL = ".update"
#: Range keys every bundle provides (used by `gaiarvs_cnn.flags.flag_boundary`).
RANGE_KEYS = (*LABELS, "phot_g_mean_mag", "parallax")


def software_versions() -> dict[str, str]:
    """Versions of the software that matters for reading a bundle.

    Returns
    -------
    dict of str to str
        Version strings of ``gaiarvs_cnn``, ``tensorflow``, ``keras`` and ``numpy``.
    """
    from ..version import __version__
    from .runtime import installed_version

    return {"gaiarvs_cnn": __version__, "tensorflow": installed_version("tensorflow"),
            "keras": installed_version("keras"), "numpy": np.__version__}


def demo_bundle_path() -> Path:
    """Directory of the demo bundle shipped in the package (trained on the simulated survey).

    Rebuilt with ``python -m gaiarvs_cnn.model.demo``.

    Returns
    -------
    pathlib.Path
        Absolute path of ``gaiarvs_cnn/data/demo_bundle``.
    """
    return Path(__file__).resolve().parent.parent / "data" / "demo_bundle"


def _major(version: str) -> str:
    return str(version).split(".")[0]


def check_versions(written: Mapping[str, str], path: Path) -> None:
    """Refuse a bundle written by an incompatible Keras, TensorFlow or numpy major version."""
    now = software_versions()
    bad = [f"{k} {written.get(k, '?')} (this installation has {now[k]})"
           for k in ("keras", "tensorflow", "numpy")
           if _major(written.get(k, "?")) != _major(now[k])]
    if bad:
        raise ModelBundleError(
            f"Model bundle {path} was written with an incompatible " + ", ".join(bad)
            + ". Install matching major versions or retrain the bundle with "
              "'gaiarvs-cnn train'.")
    if written.get("gaiarvs_cnn") != now["gaiarvs_cnn"]:
        log.info(f"Model bundle {path.name} was written by gaiarvs-cnn "
                 f"{written.get('gaiarvs_cnn')}; this is {now['gaiarvs_cnn']}.")


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelBundleError(f"Model bundle lacks {what} ({path}).") from exc
    except json.JSONDecodeError as exc:
        raise ModelBundleError(f"{path} ({what}) is not valid JSON: {exc}") from exc


@dataclass
class ModelBundle:
    """A trained ensemble with its scalers, ranges, residual fits and metadata.

    Usually obtained from `load` or `write` rather than built directly. The parameters
    are also available as attributes.

    Parameters
    ----------
    path : Path
        The bundle directory.
    config : NetworkConfig
        Architecture of every member.
    scalers : InputScalers
        Min-max scalers of the inputs and labels.
    ranges : dict
        ``(lo, hi)`` for each of LABELS, ``phot_g_mean_mag`` [mag], ``parallax`` [mas].
    residuals : dict of str to ResidualFit
        Running residual dispersion fit of each label (physical units).
    meta : dict
        Content of ``metadata.json``.
    member_files : list of Path
        The ensemble members' files, in manifest order.
    bundle_id : str
        Identifier of the bundle (digest of the member files and of the calibration file
        if any, from the manifest).
    calibration : dict of str to CalibratedDispersion, optional
        The calibrated dispersion term of each label (``calibration.json``); None for a
        bundle that uses the training residual fits (the paper's definition).
    _read : list
        What `load` read of each member (`~gaiarvs_cnn.model.member_file.read_member`:
        its weights, or the Keras model of a member in another layout); leave empty.
    _models : dict
        Internal cache of the Keras models (`member`); leave empty.
    _fused : dict
        Internal cache of the fused ensembles used for prediction, by precision; leave
        empty.
    _tsne : object
        Internal cache of `tsne_reference`; leave as None.

    Notes
    -----
    Prediction needs only the members' weights, which `load` reads from the member files
    without Keras; the Keras models (`members`, `member`) are loaded on first use.
    """

    path: Path
    config: NetworkConfig
    scalers: InputScalers
    ranges: dict
    residuals: dict
    meta: dict
    member_files: list = field(default_factory=list)
    bundle_id: str = ""
    calibration: dict | None = None
    _read: list = field(default_factory=list, repr=False)
    _models: dict = field(default_factory=dict, repr=False)
    _fused: dict = field(default_factory=dict, repr=False)
    _tsne: object = field(default=None, repr=False)

    @property
    def n_members(self) -> int:
        """Number of ensemble members."""
        return len(self.member_files)

    def member(self, index: int):
        """Ensemble member ``index`` as a Keras model (loaded on first use, then kept).

        Parameters
        ----------
        index : int
            Position in the manifest's member list.

        Returns
        -------
        keras.Model

        Raises
        ------
        ModelBundleError
            If Keras cannot read the member file or its inputs differ from the config's.
        """
        if index not in self._models:
            read = self._read[index] if index < len(self._read) else None
            self._models[index] = (load_member(self.member_files[index], self.config)
                                   if read is None or isinstance(read, Mapping) else read)
        return self._models[index]

    @property
    def members(self) -> list:
        """The ensemble members as Keras models (loaded on first use, see `member`)."""
        return [self.member(i) for i in range(self.n_members)]

    def prediction_members(self) -> list:
        """Each member as `~gaiarvs_cnn.model.predict.FusedEnsemble` takes it.

        Returns
        -------
        list
            Per member, its weights by layer name (a `build_model` member, read by `load`
            without Keras) or its Keras model (a member in another layout).
        """
        if len(self._read) != self.n_members:
            self._read = [read_member(f, self.config) for f in self.member_files]
        return list(self._read)

    def total_uncertainty(self, label: str, values: np.ndarray, spread: np.ndarray,
                          snr: np.ndarray | None = None) -> np.ndarray:
        """``sigma_<label>`` of stars with predicted ``values`` and member spread ``spread``.

        Parameters
        ----------
        label : str
            One of the bundle's labels.
        values : ndarray
            Predicted label values (physical units).
        spread : ndarray
            Member spread ``e<label>`` of each star (same units).
        snr : ndarray, optional
            RVS S/N of each star; used by a calibrated bundle (None: its largest term).

        Returns
        -------
        ndarray
            With a calibration (`CalibratedDispersion`): ``sqrt((k e)**2 + d**2)``
            calibrated on held-out stars; otherwise the paper's Sect. 3.4
            ``sqrt(e**2 + d**2)`` with ``d`` the training residual fit (`ResidualFit`).
        """
        if self.calibration is not None:
            return self.calibration[label].sigma(values, spread, snr)
        return np.hypot(spread, self.residuals[label](values))

    @property
    def tsne_dir(self) -> Path:
        """The bundle's ``tsne/`` directory (may not exist)."""
        return Path(self.path) / "tsne"

    def tsne_reference(self):
        """The bundle's t-SNE reference (digit 8 of ``flag_boundary``), loaded once.

        Returns
        -------
        `~gaiarvs_cnn.flags.TSNEReference` or None
            None (with a warning, once) when the bundle has no ``tsne/`` directory: the
            t-SNE digit is then ``"1"`` (not tested) for every star.

        Raises
        ------
        ModelBundleError
            If the reference exists but cannot be read.
        """
        if self._tsne is None:
            if not (self.tsne_dir / "tsne_reference.json").exists():
                log.warning(f"Model bundle {self.path} has no t-SNE reference (tsne/): the "
                            "t-SNE digit of flag_boundary will be '1' (not tested) for every "
                            "star.")
                self._tsne = False
            else:
                from ..flags import TSNEReference

                self._tsne = TSNEReference.load(self.tsne_dir)
        return self._tsne or None

    # -- writing -------------------------------------------------------------------
    @staticmethod
    def write(path, config: NetworkConfig, scalers: InputScalers, ranges: Mapping,
              residuals: Mapping[str, ResidualFit], meta: Mapping,
              member_files: list[str]) -> ModelBundle:
        """Write the JSON files and the manifest of a bundle whose members already exist.

        ``member_files`` are paths relative to ``path`` (e.g. ``members/split0_model0.keras``).
        Every regular file under ``path`` is listed with its checksum in the manifest,
        which is written last, so a bundle without a manifest is an unfinished one.

        Parameters
        ----------
        path : str or path-like
            Bundle directory, already holding the member files.
        config : NetworkConfig
            Architecture of the members.
        scalers : InputScalers
            Fitted input and label scalers.
        ranges : Mapping
            ``(lo, hi)`` for every key of ``RANGE_KEYS``: the labels (physical units),
            ``phot_g_mean_mag`` [mag] and ``parallax`` [mas].
        residuals : Mapping of str to ResidualFit
            Residual dispersion fit of each label of ``config.labels``.
        meta : Mapping
            Free-form metadata, written to ``metadata.json``.
        member_files : list of str
            Member files, relative to ``path``.

        Returns
        -------
        ModelBundle
            The bundle, re-read with `load`.

        Raises
        ------
        ModelBundleError
            If a member file or a range is missing, or the written bundle fails `load`.
        """
        path = Path(path)
        missing = [f for f in member_files if not (path / f).is_file()]
        if missing or not member_files:
            raise ModelBundleError(f"Cannot write bundle {path}: member file(s) missing: "
                                   f"{missing or 'none given'}.")
        absent = [k for k in RANGE_KEYS if k not in ranges]
        if absent:
            raise ModelBundleError(f"Cannot write bundle {path}: no range for {absent}.")
        # an interrupted rewrite must read as unfinished, not as the old bundle with new files
        replay_update(path)
        (path / MANIFEST).unlink(missing_ok=True)
        write_json_atomic(path / "config.json", config.to_dict())
        write_text_atomic(path / "scalers.json", scalers.to_json())
        write_json_atomic(path / "ranges.json", {k: [float(v) for v in ranges[k]]
                                                 for k in RANGE_KEYS})
        write_json_atomic(path / "residuals.json",
                          {k: residuals[k].to_dict() for k in config.labels})
        # a calibration belongs to the members it was fitted for: a (re)written bundle
        # starts uncalibrated (`write_calibration` adds one)
        write_json_atomic(path / "metadata.json",
                          {k: v for k, v in meta.items() if k != "calibration"})
        (path / CALIBRATION).unlink(missing_ok=True)
        write_manifest(path, config, member_files)
        return ModelBundle.load(path)

    @staticmethod
    def write_calibration(bundle, calibration: Mapping[str, CalibratedDispersion],
                          meta_update: Mapping | None = None) -> ModelBundle:
        """Add (or replace) the calibrated dispersion terms of a finished bundle.

        Writes ``calibration.json``, merges ``meta_update`` into ``metadata.json`` under
        the key ``"calibration"``, and rewrites the manifest: the ``bundle_id`` changes,
        since the bundle's ``sigma_*`` do.

        Parameters
        ----------
        bundle : ModelBundle, str or path-like
            A loaded bundle (its checks already passed; not loaded again) or a complete
            bundle directory (loaded and checked first).
        calibration : Mapping of str to CalibratedDispersion
            One term per label of the bundle.
        meta_update : Mapping, optional
            Description of the calibration (sample, S/N range, coverage) for the metadata.

        Returns
        -------
        ModelBundle
            The bundle, re-read with `load`.

        Raises
        ------
        ModelBundleError
            If ``bundle`` is not a loadable bundle or a label has no term.
        """
        if not isinstance(bundle, ModelBundle):
            bundle = ModelBundle.load(bundle)
        path = Path(bundle.path)
        missing = [k for k in bundle.config.labels if k not in calibration]
        if missing:
            raise ModelBundleError(f"Cannot calibrate bundle {path}: no term for {missing}.")
        meta = dict(bundle.meta)
        meta["calibration"] = dict(meta_update or {})
        manifest = _read_json(path / MANIFEST, "its manifest")
        update_files(path, bundle.config, manifest["members"], {
            CALIBRATION: {k: calibration[k].to_dict() for k in bundle.config.labels},
            "metadata.json": meta})
        return ModelBundle.load(path)

    # -- reading -------------------------------------------------------------------
    @classmethod
    def load(cls, path=None) -> ModelBundle:
        """Load and check a bundle (default: the shipped demo bundle).

        Parameters
        ----------
        path : str, path-like or None
            Bundle directory; None loads `demo_bundle_path`.

        Returns
        -------
        ModelBundle
            The bundle, with every member's weights read (`prediction_members`); the
            Keras models load on first use (`members`).

        Raises
        ------
        ModelBundleError
            If the directory is not a complete bundle, a file's checksum differs, the
            software versions are incompatible or a member's input shapes differ.
        """
        path = Path(path) if path is not None else demo_bundle_path()
        if not path.is_dir():
            raise ModelBundleError(f"No model bundle directory at {path}.")
        replay_update(path)
        manifest = _read_json(path / MANIFEST, "its manifest (unfinished or not a bundle?)")
        fmt = manifest.get("format_version")
        if fmt != BUNDLE_FORMAT_VERSION:
            raise ModelBundleError(f"Model bundle {path} has format version {fmt}; this "
                                   f"gaiarvs-cnn reads version {BUNDLE_FORMAT_VERSION}.")
        check_versions(manifest.get("versions", {}), path)
        _check_files(path, manifest["files"])
        config = read_bundle_config(path)
        scalers = InputScalers.from_json((path / "scalers.json").read_text())
        ranges = {k: tuple(v) for k, v in _read_json(path / "ranges.json", "ranges").items()}
        residuals = {k: ResidualFit.from_dict(v) for k, v in
                     _read_json(path / "residuals.json", "residual fits").items()}
        meta = _read_json(path / "metadata.json", "metadata.json")
        calibration = None
        if CALIBRATION in manifest["files"]:
            calibration = {k: CalibratedDispersion.from_dict(v) for k, v in
                           _read_json(path / CALIBRATION, "calibration").items()}
        files = [path / f for f in manifest["members"]]
        return cls(path, config, scalers, ranges, residuals, meta, files,
                   manifest["bundle_id"], calibration,
                   _read=[read_member(f, config) for f in files])


def _manifest(path: Path, config: NetworkConfig, member_files: list[str],
              staged: Mapping[str, Path] | None = None) -> dict:
    """The manifest of the bundle at ``path`` with the top-level files ``staged`` (name ->
    staged file) in place of (or beside) its own."""
    staged = dict(staged or {})
    files = {str(p.relative_to(path)): p for p in path.rglob("*")
             if p.is_file() and p.name != MANIFEST and not is_temporary(p)
             and not any(is_temporary(q) for q in p.relative_to(path).parents)
             and p.relative_to(path).parts[0] != JOURNAL}
    files.update(staged)
    ids = [*member_files, *([CALIBRATION] if CALIBRATION in files else [])]
    digest = hashlib.sha256("".join(sha256_file(files[f]) for f in ids).encode())
    return {"format_version": BUNDLE_FORMAT_VERSION, "bundle_id": digest.hexdigest()[:16],
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": software_versions(), "members": list(member_files),
            "input_shapes": {k: list(v) for k, v in input_shapes(config).items()},
            "files": {f: sha256_file(files[f]) for f in sorted(files)}}


def write_manifest(path, config: NetworkConfig, member_files: list[str]) -> None:
    """Write ``manifest.json`` of the bundle at ``path``: every file with its checksum.

    The ``bundle_id`` is a digest of the member files and, when present, of
    ``calibration.json`` (which changes the bundle's uncertainties).
    """
    path = Path(path)
    write_json_atomic(path / MANIFEST, _manifest(path, config, member_files))


def update_files(path, config: NetworkConfig, member_files: list[str],
                 files: Mapping[str, object]) -> None:
    """Replace top-level JSON files of a bundle and its manifest as one (journal).

    Parameters
    ----------
    path : str or path-like
        Bundle directory.
    config : NetworkConfig
        The bundle's config (for the manifest).
    member_files : list of str
        The bundle's member files (for the manifest and the ``bundle_id``).
    files : Mapping of str to object
        File name (top level of the bundle) -> JSON content.

    Notes
    -----
    See the module documentation: the files and the new manifest are staged in a hidden
    directory, renamed to ``.update/`` in one step (the commit), then moved into place by
    `replay_update`. An exception before the commit leaves the bundle as it was.
    """
    path = Path(path)
    replay_update(path)  # finish an earlier committed update first
    staging = temporary_path(path / JOURNAL)
    staging.mkdir()
    try:
        for name, content in files.items():
            write_json_atomic(staging / name, content)
        write_json_atomic(staging / MANIFEST, _manifest(
            path, config, member_files, {n: staging / n for n in files}))
        _fsync_directory(staging)
        staging.rename(path / JOURNAL)  # the commit point
        _fsync_directory(path)
    except BaseException:
        remove_path(staging)
        raise
    replay_update(path)


def replay_update(path) -> None:
    """Finish a committed multi-file update of the bundle at ``path`` (idempotent).

    Moves every file of ``path/.update/`` into ``path``, the manifest last, then removes
    the journal. Does nothing when there is none.

    Raises
    ------
    ModelBundleError
        If the journal cannot be applied (e.g. a read-only bundle directory).
    """
    path = Path(path)
    journal = path / JOURNAL
    if not journal.is_dir():
        return
    try:
        for f in sorted(journal.iterdir(), key=lambda f: (f.name == MANIFEST, f.name)):
            if is_temporary(f):
                f.unlink()
            else:
                f.replace(path / f.name)
        journal.rmdir()
        _fsync_directory(path)
    except OSError as exc:
        raise ModelBundleError(
            f"Model bundle {path} holds an update that was interrupted ({journal}) and it "
            f"cannot be finished: {exc.strerror or exc}. Make the directory writable and "
            "load the bundle again.") from exc


def _fsync_directory(path: Path) -> None:
    """Flush a directory's entries (renames) to disk, where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_bundle_id(path) -> str:
    """The ``bundle_id`` of a bundle directory, read from its manifest (no model is loaded).

    Parameters
    ----------
    path : str or path-like
        Bundle directory.

    Returns
    -------
    str
        The identifier `ModelBundle.load` would give the bundle.

    Raises
    ------
    ModelBundleError
        If the directory holds no readable manifest with a ``bundle_id``.
    """
    path = Path(path)
    replay_update(path)
    manifest = _read_json(path / MANIFEST, "its manifest (unfinished or not a bundle?)")
    if "bundle_id" not in manifest:
        raise ModelBundleError(f"{path / MANIFEST} has no bundle_id: not a model bundle.")
    return str(manifest["bundle_id"])


def read_bundle_config(path) -> NetworkConfig:
    """The `NetworkConfig` of a bundle directory, read from its ``config.json`` (no model is
    loaded): e.g. ``read_bundle_config(path).inputs``, the branches whose input cuts apply.

    Parameters
    ----------
    path : str or path-like
        Bundle directory.

    Returns
    -------
    NetworkConfig

    Raises
    ------
    ModelBundleError
        If the directory holds no readable ``config.json``.
    """
    return NetworkConfig.from_dict(_read_json(Path(path) / "config.json", "config.json"))


def _check_files(path: Path, files: Mapping[str, str]) -> None:
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise ModelBundleError(f"Model bundle {path} lacks {name} (listed in its manifest).")
        if sha256_file(f) != digest:
            raise ModelBundleError(f"{f} differs from the checksum in the bundle manifest "
                                   "(modified or truncated); restore or retrain the bundle.")
