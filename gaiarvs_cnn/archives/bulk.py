"""Gaia DR3 bulk files: download ``RvsMeanSpectrum_*`` / ``XpContinuousMeanSpectrum_*``
with their MD5 checksums and ingest each pair into one shard of a sharded store.

The archive's bulk area (``conf.gaia_bulk_url``) holds one directory per product
(`BULK_DIRECTORIES`) with the gzipped ECSV files of source_id ranges
(``RvsMeanSpectrum_000000-003111.csv.gz`` ...) and a checksum file `MD5_FILE` listing
``<md5>  <file name>`` per line. **The directory names and the checksum file name are
the ones this package assumes; they were not verified against the archive from a stored
source** (override ``conf.gaia_bulk_url``; an unknown layout fails with a message naming
the URL).

Downloads go through `astropy.utils.data.download_file` with the astropy cache (package
``gaiarvs_cnn``): a file already downloaded is not fetched again, and a re-run after an
interruption continues with the files still missing. Every file is checked against its
MD5; a mismatch drops the cached copy and downloads once more before failing. Each
(RVS, XP) pair of the same range becomes one store (`gaiarvs_cnn.io.ingest.bulk_to_store`,
written atomically) and a shard manifest (`gaiarvs_cnn.io.manifest.create_manifest`) ties
the shards together; the row layout of the files is the Gaia DR3 data model's
(``rvs_mean_spectrum``: ``source_id``, ``flux``, ``flux_error`` with 2401 values;
``xp_continuous_mean_spectrum``: 55 BP and 55 RP coefficients and errors), checked by the
bulk reader.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astropy import log
from tqdm import tqdm

from ..exceptions import ArchiveError, InputDataError
from .http import HTTPClient

__all__ = ["BULK_DIRECTORIES", "MD5_FILE", "parse_md5sums", "bulk_listing",
           "download_checked", "fetch_bulk", "BulkReport"]

#: Sub-directory of ``conf.gaia_bulk_url`` per product, and the file-name prefix.
BULK_DIRECTORIES = {"RVS": ("rvs_mean_spectrum", "RvsMeanSpectrum_"),
                    "XP_CONTINUOUS": ("xp_continuous_mean_spectrum",
                                      "XpContinuousMeanSpectrum_")}
#: Checksum file of each bulk directory.
MD5_FILE = "_MD5SUM.txt"
_RANGE = re.compile(r"_(\d+-\d+)\.csv(?:\.gz)?$")


def parse_md5sums(text: str, where: str = "checksum file") -> dict[str, str]:
    """``{file name: md5}`` from ``md5sum`` output (``<32 hex>  <name>`` per line).

    Parameters
    ----------
    text : str
        The checksum file.
    where : str
        Names the file in messages.

    Returns
    -------
    dict of str to str

    Raises
    ------
    ArchiveError
        If a non-empty line is not ``<md5> <name>``.

    Examples
    --------
    >>> parse_md5sums("0123456789abcdef0123456789abcdef  RvsMeanSpectrum_0-1.csv.gz")
    {'RvsMeanSpectrum_0-1.csv.gz': '0123456789abcdef0123456789abcdef'}
    """
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = re.fullmatch(r"\s*([0-9a-fA-F]{32})\s+\*?(\S+)\s*", line)
        if not m:
            raise ArchiveError(f"{where}, line {n}: {line[:80]!r} is not '<md5>  <file>'.")
        out[Path(m.group(2)).name] = m.group(1).lower()
    return out


def bulk_listing(kind: str, *, base_url: str | None = None,
                 client: HTTPClient | None = None) -> tuple[str, dict[str, str]]:
    """The directory URL of ``kind`` and its files with their MD5 (from `MD5_FILE`).

    Parameters
    ----------
    kind : {"RVS", "XP_CONTINUOUS"}
    base_url : str, optional
        Default ``conf.gaia_bulk_url``.
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional

    Returns
    -------
    directory : str
    files : dict of str to str
        File name -> MD5, only the product's ``*.csv.gz`` files.

    Raises
    ------
    ArchiveError
        If the checksum file cannot be read.
    """
    from ..settings import conf

    sub, prefix = BULK_DIRECTORIES[kind]
    directory = f"{(base_url or conf.gaia_bulk_url).rstrip('/')}/{sub}/"
    text = (client or HTTPClient()).fetch("GET", directory + MD5_FILE,
                                          what=f"bulk {kind} checksums").decode()
    files = {k: v for k, v in parse_md5sums(text, directory + MD5_FILE).items()
             if k.startswith(prefix) and _RANGE.search(k)}
    if not files:
        raise ArchiveError(f"{directory}{MD5_FILE} lists no {prefix}*.csv.gz file: check "
                           f"conf.gaia_bulk_url.")
    return directory, files


def download_checked(url: str, md5: str, *, show_progress: bool = True) -> Path:
    """Download ``url`` into the astropy cache (package ``gaiarvs_cnn``), MD5-checked.

    Parameters
    ----------
    url : str
        The file.
    md5 : str
        Its expected MD5 (hex).
    show_progress : bool
        astropy's download progress bar.

    Returns
    -------
    pathlib.Path
        The cached file.

    Raises
    ------
    ArchiveError
        If the download fails or the MD5 still differs after one fresh download.
    """
    from astropy.utils.data import clear_download_cache, compute_hash, download_file

    from ..settings import conf

    got = None
    for attempt in range(2):
        try:
            path = download_file(url, cache=True, show_progress=show_progress,
                                 timeout=conf.timeout, pkgname="gaiarvs_cnn")
        except Exception as exc:  # urllib, socket and astropy raise many types
            raise ArchiveError(f"Download of {url} failed: {exc}") from exc
        got = compute_hash(path).lower() if len(md5) == 32 else None
        if got is None:  # astropy's compute_hash is MD5; anything else cannot be checked
            raise ArchiveError(f"{url}: checksum {md5!r} is not an MD5.")
        if got == md5.lower():
            return Path(path)
        log.warning(f"{url}: MD5 {got} differs from the archive's {md5}"
                    + ("; downloading again." if attempt == 0 else "."))
        clear_download_cache(url, pkgname="gaiarvs_cnn", on_missing="ignore")
    raise ArchiveError(f"{url}: MD5 {got} differs from the archive's checksum {md5} after a "
                       f"fresh download; the file is corrupt at the source or in transit. "
                       f"Try again later.")


@dataclass
class BulkReport:
    """What `fetch_bulk` did.

    Parameters
    ----------
    shards : list of pathlib.Path
        Every shard of the output, in range order.
    stored : list of str
        Ranges ingested by this run.
    skipped : list of str
        Ranges already complete (resumption).
    failed : list of (str, str)
        Ranges that failed, with the error (nothing of them was written).
    manifest : pathlib.Path or None
        The shard manifest (written when every range is complete).
    """

    shards: list = field(default_factory=list)
    stored: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    manifest: Path | None = None

    @property
    def ok(self) -> bool:
        """True when no range failed."""
        return not self.failed

    def summary(self) -> str:
        """One line per fact, for the command line."""
        lines = [f"{len(self.stored)} bulk range(s) ingested, {len(self.skipped)} already "
                 f"complete"]
        lines += [f"FAILED {r}: {e}" for r, e in self.failed]
        if self.manifest is not None:
            lines.append(f"manifest: {self.manifest}")
        return "\n".join(lines)


def fetch_bulk(out_dir, *, ranges: Sequence[str] | None = None, limit: int | None = None,
               base_url: str | None = None, client: HTTPClient | None = None,
               chunk_size: int | None = None, progress: bool = True) -> BulkReport:
    """Download bulk RVS + XP files and ingest each range into one shard (resumable).

    Parameters
    ----------
    out_dir : path-like
        Directory of the shards (``<range>.h5``) and of ``manifest.json``.
    ranges : sequence of str, optional
        Only these source_id ranges (``"000000-003111"``); default every range listed.
    limit : int, optional
        At most this many ranges (the first ones), e.g. for a trial run.
    base_url : str, optional
        Default ``conf.gaia_bulk_url``.
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        For the checksum files.
    chunk_size : int, optional
        Stars per store chunk (default ``conf.chunk_size``).
    progress : bool
        Progress bars.

    Returns
    -------
    BulkReport
        A range whose shard exists is skipped; a failed range leaves no shard (stores are
        written atomically) and is retried by the next run.

    Raises
    ------
    InputDataError
        If ``ranges`` names a range that is not listed.
    ArchiveError
        If a checksum file cannot be read.
    """
    from ..io.ingest import bulk_to_store
    from ..io.manifest import create_manifest

    out_dir = Path(out_dir)
    client = client or HTTPClient()
    rvs_dir, rvs_files = bulk_listing("RVS", base_url=base_url, client=client)
    xp_dir, xp_files = bulk_listing("XP_CONTINUOUS", base_url=base_url, client=client)
    xp_by_range = {_RANGE.search(n).group(1): n for n in xp_files}
    by_range = {_RANGE.search(n).group(1): n for n in sorted(rvs_files)}
    if ranges is not None:
        unknown = sorted(set(ranges) - set(by_range))
        if unknown:
            raise InputDataError(f"Bulk range(s) {unknown[:5]} are not listed in "
                                 f"{rvs_dir}{MD5_FILE}.")
        by_range = {r: n for r, n in by_range.items() if r in set(ranges)}
    todo = list(by_range.items())[:limit] if limit is not None else list(by_range.items())
    report = BulkReport()
    out_dir.mkdir(parents=True, exist_ok=True)
    for rng, rvs_name in tqdm(todo, desc="bulk ranges", unit="range", disable=not progress):
        shard = out_dir / f"{rng}.h5"
        report.shards.append(shard)
        if shard.exists():
            report.skipped.append(rng)
            continue
        try:
            if rng not in xp_by_range:
                raise ArchiveError(f"no XpContinuousMeanSpectrum file for range {rng} in "
                                   f"{xp_dir}{MD5_FILE}")
            xp_name = xp_by_range[rng]
            rvs = download_checked(rvs_dir + rvs_name, rvs_files[rvs_name],
                                   show_progress=progress)
            xp = download_checked(xp_dir + xp_name, xp_files[xp_name], show_progress=progress)
            bulk_to_store([rvs], [xp], shard, chunk_size=chunk_size)
        except (ArchiveError, InputDataError) as exc:
            log.error(f"Bulk range {rng} failed: {exc}")
            report.failed.append((rng, str(exc)))
            continue
        report.stored.append(rng)
    if report.ok and report.shards:
        report.manifest = create_manifest(report.shards, out_dir / "manifest.json",
                                          meta={"source": "Gaia DR3 bulk files",
                                                "bulk_url": rvs_dir.rsplit("/", 2)[0]},
                                          overwrite=True).path
    (log.info if report.ok else log.warning)(report.summary())
    return report
