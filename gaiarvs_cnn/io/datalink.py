"""DataLink bundles: the RVS and XP continuous products of a zip, a folder or an astroquery dict.

Every file of a bundle is classified by its content (`gaiarvs_cnn.io.products`); other Gaia
products (XP_SAMPLED, MCMC_MSC, gaia_source, ...) are reported in the log by name and left
out. `read_products` reads one product type from several files or bundles.
"""
from __future__ import annotations

import functools
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from astropy import log
from astropy.table import Table

from ..exceptions import BadStarError, InputDataError
from ..utils.zipcheck import check_zip_budget
from .batch import StarBatch, join_batches
from .policy import BadStarPolicy, as_policy
from .products import KIND_NAMES, OTHER_PRODUCTS, classify_tables
from .spectra import PRODUCTS, read_product
from .tables import read_tables, votable_element_to_table

__all__ = ["read_datalink_products", "read_products"]


def _product_type(name: str) -> str:
    """'XP_CONTINUOUS' from 'XP_CONTINUOUS-Gaia DR3 1.csv' or 'XP_CONTINUOUS_COMBINED.xml'."""
    head = re.split(r"[-.]", Path(name).name, maxsplit=1)[0].strip().upper()
    return re.sub(r"_(COMBINED|INDIVIDUAL|RAW)$", "", head)


def _member(name: str, read: Callable[[], list[Table]], policy: BadStarPolicy
            ) -> tuple[str, list[Table], str | None]:
    """(name, tables, kind) of one file of a bundle: by name when it is a Gaia product name
    we do not read (not opened), else by content. Unreadable or unknown files go to the
    policy (an error with 'raise', a warning naming them with 'skip')."""
    by_name = _product_type(name)
    if by_name in OTHER_PRODUCTS:
        return name, [], by_name
    try:
        tables = read()
        return name, tables, classify_tables(tables, name)
    except BadStarError:
        raise
    except InputDataError as exc:
        policy.skip_file(exc)
        return name, [], None


def _bundle_items(bundle, policy: BadStarPolicy
                  ) -> Iterator[tuple[str, list[Table], str | None]]:
    """(file name, tables, kind) for every file in a zip, a directory or an astroquery dict."""
    if isinstance(bundle, Mapping):
        for name, value in bundle.items():
            yield _member(name, functools.partial(_tables_from_value, value, name), policy)
        return
    path = Path(bundle)
    if path.is_dir():
        for file in sorted(p for p in path.iterdir() if p.is_file()):
            if file.name.startswith("."):      # hidden: .DS_Store, unfinished downloads
                log.debug(f"Ignoring hidden file {file} in {path}.")
                continue
            yield _member(str(file), functools.partial(read_tables, file), policy)
        return
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as exc:
        raise InputDataError(f"{path} is not a DataLink zip bundle or a directory ({exc}); "
                             "if it is a download, it may be incomplete.") from exc
    with archive:
        # declared sizes against conf.zip_member_max_bytes / zip_max_bytes before any
        # member is read: a zip bomb is refused, not inflated
        check_zip_budget(archive, label=str(path))
        for member in archive.namelist():
            if member.endswith("/"):
                continue
            label = f"{path.name}:{member}"

            def read(m=member, label=label):
                try:
                    data = archive.read(m)
                except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
                        zlib.error) as exc:
                    raise InputDataError(f"{label} cannot be extracted ({exc}); the zip "
                                         "archive is damaged, download it again.") from exc
                return read_tables(data, name=label)

            yield _member(label, read, policy)


def _tables_from_value(value, name: str) -> list[Table]:
    """astroquery's values: a list of Tables / VOTable TableElements, a Table, or a path."""
    if isinstance(value, str | os.PathLike):
        return read_tables(value, name=name)
    items = value if isinstance(value, list | tuple) else [value]
    return [it if isinstance(it, Table) else votable_element_to_table(it) for it in items]


def read_datalink_products(bundle, on_error: str | BadStarPolicy | None = None
                           ) -> dict[str, StarBatch]:
    """Read the RVS and XP continuous products of a DataLink bundle.

    Every file is classified by its content (`classify_table`), so products need not be
    named ``RVS-*`` / ``XP_CONTINUOUS-*``.

    Parameters
    ----------
    bundle : path-like or mapping
        A zip file as downloaded from the archive, a directory of products (hidden files
        are ignored), or the dict returned by ``astroquery.gaia.Gaia.load_data`` (file
        name -> list of tables). Other Gaia products (XP_SAMPLED, MCMC_MSC, gaia_source,
        ...) are reported in the log by name and left out.
    on_error : {'raise', 'skip'} or `~gaiarvs_cnn.io.policy.BadStarPolicy`, optional
        What to do with a bad star, and with a file that is not a Gaia product (error with
        'raise', a warning naming it with 'skip'). Default ``conf.on_error``.

    Returns
    -------
    dict
        ``{'RVS': StarBatch, 'XP_CONTINUOUS': StarBatch}``; a product absent from the
        bundle gives an empty batch.

    Raises
    ------
    InputDataError
        The bundle cannot be opened, or (``on_error='raise'``) one of its files is not a
        readable Gaia product.
    BadStarError
        A bad star (``on_error='raise'``).
    """
    policy = as_policy(on_error)
    found: dict[str, list[StarBatch]] = {k: [] for k in PRODUCTS}
    for name, tables, kind in _bundle_items(bundle, policy):
        if kind is None:
            continue
        if kind not in PRODUCTS:
            log.info(f"Ignoring {KIND_NAMES.get(kind, kind)} in {name}: not an input of "
                     "gaiarvs-cnn here.")
            continue
        found[kind].extend(PRODUCTS[kind](t, name, policy) for t in tables)
    out = {}
    for kind, batches in found.items():
        out[kind] = policy.drop_duplicates(join_batches(batches), f"{kind} products")
    return out


def _is_bundle(path) -> bool:
    p = Path(path)
    return p.is_dir() or zipfile.is_zipfile(p)


def read_products(paths: Iterable, product: str = "RVS",
                  on_error: str | BadStarPolicy | None = None) -> StarBatch:
    """Read one product type from several files (single products or DataLink bundles).

    Parameters
    ----------
    paths : iterable of path-like
        RVS or XP continuous products in any supported format, zip bundles or directories;
        each file is checked by content to hold ``product``.
    product : {'RVS', 'XP_CONTINUOUS'}
        Product type to read from each file or bundle.
    on_error : {'raise', 'skip'} or `~gaiarvs_cnn.io.policy.BadStarPolicy`, optional
        With 'skip', unreadable or foreign files and bad stars are logged by name and
        skipped. Default ``conf.on_error``.

    Returns
    -------
    StarBatch
        All stars, duplicates across files removed (or refused, per ``on_error``).

    Raises
    ------
    InputDataError
        A file cannot be read or holds another product (``on_error='raise'``).
    BadStarError
        A bad star (``on_error='raise'``).
    """
    if product not in PRODUCTS:
        raise ValueError(f"product must be one of {sorted(PRODUCTS)}, not {product!r}.")
    policy = as_policy(on_error)
    batches = []
    for path in paths:
        try:
            if _is_bundle(path):
                batch = read_datalink_products(path, policy)[product]
                if not len(batch):
                    log.warning(f"{path}: no {KIND_NAMES[product]} found in this bundle.")
            else:
                batch = read_product(path, product, None, policy)
            batches.append(batch)
        except BadStarError:
            raise
        except InputDataError as exc:
            policy.skip_file(exc)
    return policy.drop_duplicates(join_batches(batches), f"the {product} files")
