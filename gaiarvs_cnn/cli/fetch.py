"""``gaiarvs-cnn fetch gaia`` and ``gaiarvs-cnn fetch reference``: download from the archives."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import click

# Exit statuses (defined once for every command in cli/__init__.py): EXIT_OK, EXIT_ERROR
# (network, service, input), EXIT_USAGE (click's usage errors), EXIT_PARTIAL (``fetch gaia``:
# some chunks failed after every retry; re-running the same command resumes them).
from ..io.source_ids import read_source_ids
from . import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, RegistryChoice, main  # noqa: F401

#: Reference kinds of ``fetch reference`` and what they query.
REFERENCE_HELP = ("apogee: APOGEE DR17 allStar (VizieR III/286), galah: GALAH DR3 "
                  "(J/MNRAS/506/150), seismic: K2-GAP DR3 (J/ApJ/926/191), clusters: "
                  "Cantat-Gaudin+2020 members (J/A+A/640/A1), gsp-spec / gsp-phot: Gaia DR3 "
                  "astrophysical_parameters (needs --source-ids or --store), published: "
                  "the paper's RVS-CNN catalogue (AIP gaiadr3_contrib).")


def _reference_kinds() -> tuple[str, ...]:
    from ..io.reference import ALL_KINDS

    return ALL_KINDS


def write_table_atomic(table, path: Path, overwrite: bool) -> None:
    """Write ``table`` (format from the extension) atomically (`gaiarvs_cnn.utils.atomic`).

    Non-scalar ``meta`` values are written as JSON strings.

    Parameters
    ----------
    table : astropy.table.Table
        The table to write.
    path : pathlib.Path
        Output file; ``.xml`` is written as a VOTable, other suffixes by astropy's
        format detection.
    overwrite : bool
        If True, replace an existing ``path``.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    from astropy.io.fits.verify import VerifyWarning
    from astropy.utils.exceptions import AstropyUserWarning

    from ..utils.atomic import atomic_path, refuse_existing

    refuse_existing(path, overwrite=overwrite, what="output table")
    out = table.copy(copy_data=False)
    for key, value in list(out.meta.items()):
        if not isinstance(value, str | int | float | bool):
            out.meta[key] = json.dumps(value, default=str)
    with warnings.catch_warnings(), atomic_path(path, suffix=path.suffix) as tmp:
        # FITS cannot store dex units (check_reference restores them on reading) and
        # long meta keys become HIERARCH cards: both are expected.
        warnings.simplefilter("ignore", AstropyUserWarning)
        warnings.simplefilter("ignore", VerifyWarning)
        out.write(tmp, overwrite=True,
                  **({"format": "votable"} if path.suffix == ".xml" else {}))


@main.group("fetch")
def fetch_group():
    """Download Gaia DR3 spectra into a store, or reference catalogues into a table.

    \b
    Examples (ids.txt: your Gaia DR3 source_ids, one per line):
      gaiarvs-cnn fetch gaia --source-ids ids.txt -o gaia_rvs.h5
      gaiarvs-cnn fetch gaia --training apogee -o training.h5
      gaiarvs-cnn fetch reference --kind galah -o galah.fits
    """


@fetch_group.command("gaia", calls="fetch_to_store")
@click.option("--query", "query", help="ADQL returning a source_id column.")
@click.option("--source-ids", "source_ids", type=click.Path(exists=True, path_type=Path),
              help="File of Gaia DR3 source ids (text, one per line, or a table).")
@click.option("--training", type=click.Choice(["apogee"]),
              help="Fetch the APOGEE DR17 training sample (labels stored, training cuts).")
@click.option("-o", "--output", "output", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="HDF5 store to create or append to (resumable).")
@click.option("--service", type=click.Choice(["esa", "aip"]), default="esa", show_default=True,
              help="ESA Gaia archive (TAP + DataLink) or the AIP mirror (TAP).")
@click.option("--max-ids", type=click.IntRange(min=1), default=None,
              help="Source ids per spectra request (default: conf limit of the service).")
@click.option("--no-cuts", is_flag=True, help="Do not apply the paper's Gaia quality cuts.")
@click.option("--refresh", is_flag=True, help="Bypass the download cache.")
@click.option("--overwrite", is_flag=True, help="Replace the store instead of appending.")
def fetch_gaia(query, source_ids, training, output, service, max_ids, no_cuts, refresh,
               overwrite):
    """Select Gaia DR3 stars with RVS spectra and store their spectra and XP coefficients.

    Exactly one of --query, --source-ids, --training. Re-running the same command skips
    the chunks already stored and retries failed ones.

    \b
    Exit status: 0 complete; 3 partial (some chunks failed after every retry: re-run the
    same command to resume); 1 error (nothing more to gain by re-running unchanged);
    2 usage error.

    \b
    Examples (ids.txt: your Gaia DR3 source_ids, one per line):
      gaiarvs-cnn fetch gaia --source-ids ids.txt -o gaia_rvs.h5
      gaiarvs-cnn fetch gaia --query "SELECT TOP 100 source_id FROM gaiadr3.gaia_source
          WHERE has_rvs = 'true' AND rvs_spec_sig_to_noise > 50" -o bright.h5 --service aip
    """
    from ..archives.aip import AIPArchive
    from ..archives.gaia import GaiaArchive
    if sum(x is not None for x in (query, source_ids, training)) != 1:
        raise click.UsageError("Give exactly one of --query, --source-ids, --training.")
    cls = AIPArchive if service == "aip" else GaiaArchive
    archive = cls(max_ids=max_ids, refresh=refresh)
    labels = None
    if training == "apogee":
        from ..archives.apogee import query_apogee

        labels = query_apogee(refresh=refresh)
    report = archive.fetch_to_store(
        output, source_ids=read_source_ids(source_ids) if source_ids else None, query=query,
        labels=labels, cuts=not no_cuts, training=labels is not None, overwrite=overwrite)
    click.echo(report.summary())
    if not report.ok:
        click.echo(f"Incomplete: {len(report.failed_chunks)} chunk(s) failed; re-run the same "
                   f"command to resume (exit status {EXIT_PARTIAL}).", err=True)
        raise SystemExit(EXIT_PARTIAL)


@fetch_group.command("reference", calls="query_reference")
@click.option("--kind", required=True, type=RegistryChoice(_reference_kinds),
              help=REFERENCE_HELP)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path),
              help="Output table (.fits, .ecsv, .xml/.vot); units and source_id included. "
                   "Required unless --probe.")
@click.option("--probe", is_flag=True,
              help="Read one row (SELECT TOP 1 *) of the real table and report which "
                   "columns map and which are missing; exit 1 if a required one is missing.")
@click.option("--source-ids", "source_ids", type=click.Path(exists=True, path_type=Path),
              help="Restrict to these Gaia DR3 ids (text file or table).")
@click.option("--store", "store", type=click.Path(exists=True, path_type=Path),
              help="Restrict to the stars of this HDF5 store.")
@click.option("--good-flags", is_flag=True,
              help="gsp-spec: keep stars with the first 13 flags_gspspec digits = 0.")
@click.option("--refresh", is_flag=True, help="Bypass the download cache.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def fetch_reference(kind, output, probe, source_ids, store, good_flags, refresh, overwrite):
    """Download a reference catalogue in the canonical schema (quality cuts applied).

    \b
    Examples (gaia_rvs.h5 from 'fetch gaia'):
      gaiarvs-cnn fetch reference --kind galah -o galah.fits
      gaiarvs-cnn fetch reference --kind gsp-spec --store gaia_rvs.h5 --good-flags -o gsp.fits
      gaiarvs-cnn fetch reference --kind apogee --probe
    """
    from ..archives.catalogues import query_reference
    from ..io.store import Store

    if probe:
        from ..archives.catalogues import probe_reference

        report = probe_reference(kind)
        click.echo(report.summary())
        raise SystemExit(EXIT_OK if report.ok else EXIT_ERROR)
    if output is None:
        raise click.UsageError("Give -o/--output (or --probe).")
    ids = None
    if source_ids is not None:
        ids = read_source_ids(source_ids)
    elif store is not None:
        with Store.open(store) as st:
            ids = st.source_ids().tolist()
    table = query_reference(kind, ids, refresh=refresh, good_flags=good_flags)
    write_table_atomic(table, output, overwrite)
    click.echo(f"{kind}: {len(table)} star(s) written to {output}")


@fetch_group.command("bulk", calls="fetch_bulk")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False,
              path_type=Path), help="Directory of the shards (one per bulk range) and "
              "manifest.json; re-running resumes.")
@click.option("--range", "ranges", multiple=True, metavar="FIRST-LAST",
              help="Only this source_id range of the bulk files (e.g. 000000-003111); "
                   "repeat for several. Default: every range.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most this many ranges (a trial run).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def fetch_bulk_command(out_dir, ranges, limit, quiet):
    """Download Gaia DR3 bulk RVS and XP files (MD5-checked, cached) into a sharded store.

    Each RvsMeanSpectrum_<range>.csv.gz and XpContinuousMeanSpectrum_<range>.csv.gz pair
    becomes the shard OUT/<range>.h5; OUT/manifest.json lists them once every range is
    complete. The URL is conf.gaia_bulk_url.

    \b
    Exit status: 0 complete; 3 partial (re-run to resume); 1 error; 2 usage error.

    \b
    Examples:
      gaiarvs-cnn fetch bulk -o dr3_bulk --limit 2
      gaiarvs-cnn fetch bulk -o dr3_bulk --range 000000-003111
    """
    from ..archives.bulk import fetch_bulk

    report = fetch_bulk(out_dir, ranges=list(ranges) or None, limit=limit,
                        progress=not quiet)
    click.echo(report.summary())
    if not report.ok:
        raise SystemExit(EXIT_PARTIAL)
