"""The HATS catalogue writer (gaiarvs_cnn.catalog.hats), read back with lsdb."""
import numpy as np
import pytest

from gaiarvs_cnn.catalog import build_catalog_table, catalog_columns
from gaiarvs_cnn.exceptions import InputDataError, OutputExistsError

lsdb = pytest.importorskip("lsdb")
pytest.importorskip("hats_import")

from gaiarvs_cnn.catalog.hats import GAIA_HEALPIX12_DIVISOR, HATSWriter, read_hats  # noqa: E402

LABEL_COLUMNS = [c["name"] for c in catalog_columns()][1:-1]


def make_chunk(n, first, seed):
    """``n`` stars with Gaia-like source_ids (level-12 pixel of their position) and labels."""
    import cdshealpix
    from astropy.coordinates import Latitude, Longitude

    rng = np.random.default_rng(seed)
    # a dense field and an all-sky sprinkle, so pixels of several orders are made
    ra = np.where(rng.random(n) < 0.6, rng.normal(266.4, 0.5, n) % 360, rng.uniform(0, 360, n))
    dec = np.where(ra > 264, np.clip(rng.normal(-29.0, 0.5, n), -89, 89),
                   np.degrees(np.arcsin(rng.uniform(-1, 1, n))))
    pix12 = cdshealpix.nested.lonlat_to_healpix(Longitude(ra, "deg"), Latitude(dec, "deg"), 12)
    ids = pix12.astype(np.int64) * GAIA_HEALPIX12_DIVISOR + first + np.arange(n)
    pred = {"source_id": ids}
    for j, name in enumerate(LABEL_COLUMNS):
        values = rng.normal(j, 1, n).astype(np.float32)
        values[rng.random(n) < 0.05] = np.nan                  # missing labels stay NaN
        pred[name] = values
    flags = rng.choice(["00000000", "10000001", "00000010"], n)
    table = build_catalog_table(pred, flags)
    table["ra"], table["dec"] = ra, dec
    return table


@pytest.fixture(scope="module")
def chunks():
    return [make_chunk(250, 1000 * i, seed=i) for i in range(3)]


@pytest.fixture(scope="module")
def hats_catalog(chunks, tmp_path_factory):
    path = tmp_path_factory.mktemp("hats") / "gaiarvs_cnn_catalog"
    with HATSWriter(path, meta={"bundle_id": "test-bundle", "n_input": 750},
                    pixel_threshold=120, highest_order=8) as writer:
        for chunk in chunks:
            writer.write(chunk)
    return path


def test_lsdb_reads_every_row_and_column(chunks, hats_catalog):
    from astropy.table import vstack

    expected = vstack(chunks)
    expected.sort("source_id")
    cat = lsdb.open_catalog(hats_catalog)
    orders = {p.order for p in cat.get_healpix_pixels()}
    assert len(orders) > 1                             # the dense field was split deeper
    df = cat.compute().sort_values("source_id")
    assert list(df.columns) == ["source_id", "ra", "dec", *LABEL_COLUMNS, "flag_boundary"]
    assert len(df) == len(expected) == 750
    np.testing.assert_array_equal(df["source_id"].to_numpy(), expected["source_id"])
    for name in ("ra", "dec", *LABEL_COLUMNS):
        np.testing.assert_array_equal(df[name].to_numpy(dtype=float, na_value=np.nan),
                                      np.asarray(expected[name], dtype=float), err_msg=name)
    assert df["flag_boundary"].astype(str).tolist() == expected["flag_boundary"].tolist()
    # every star sits in the HEALPix pixel of its partition (lsdb's spatial index)
    assert (df.index.to_numpy() >> (2 * (29 - 12))).tolist() == (
        expected["source_id"] // GAIA_HEALPIX12_DIVISOR).tolist()


def test_cone_search_and_metadata(chunks, hats_catalog):
    cone = lsdb.open_catalog(hats_catalog).cone_search(266.4, -29.0, radius_arcsec=1800)
    got = cone.compute()
    assert 0 < len(got) < 750
    back = read_hats(hats_catalog)
    assert back.meta["bundle_id"] == "test-bundle"
    assert back.meta["nstars"] == "750"
    good = sum(int(np.sum(c["flag_boundary"] == "00000000")) for c in chunks)
    assert back.meta["ngood"] == str(good)
    assert str(back["teff"].unit) == "K" and str(back["ra"].unit) == "deg"
    assert len(back) == 750


def test_refuses_existing_and_leaves_nothing_on_failure(chunks, hats_catalog, tmp_path):
    with pytest.raises(OutputExistsError):
        with HATSWriter(hats_catalog):
            pass
    target = tmp_path / "cat"
    with pytest.raises(InputDataError, match="'ra' and 'dec'"):
        with HATSWriter(target) as writer:
            writer.write(chunks[0])
            chunk = chunks[1].copy()
            del chunk["ra"]
            writer.write(chunk)
    bad = chunks[0].copy()
    bad["dec"][3] = np.nan
    with pytest.raises(InputDataError, match=str(bad["source_id"][3])):
        with HATSWriter(target) as writer:
            writer.write(bad)
    with pytest.raises(InputDataError, match="at least one star"):
        with HATSWriter(target):
            pass
    assert list(tmp_path.iterdir()) == []


def test_registered_in_the_catalogue_format_registry(chunks, tmp_path):
    from dask.distributed import Client

    from gaiarvs_cnn.catalog import CATALOG_FORMATS, open_writer, output_paths

    assert CATALOG_FORMATS["hats"] == ""
    path, = output_paths(tmp_path, "hats")
    assert path == tmp_path / "gaiarvs_cnn_catalog"
    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=None) as client:
        with open_writer(path, "hats", meta={"bundle_id": "b"}, client=client) as writer:
            assert isinstance(writer, HATSWriter) and writer.client is client
            writer.write(chunks[2])
    assert len(lsdb.open_catalog(path).compute()) == len(chunks[2])
