"""The one suffix table (gaiarvs_cnn.utils.formats), used by input readers and catalogues."""
from gaiarvs_cnn.catalog import CATALOG_FORMATS, format_of
from gaiarvs_cnn.io.tables import infer_format
from gaiarvs_cnn.utils.formats import ASTROPY_FORMATS, SUFFIX_FORMATS, format_from_suffix


def test_longest_suffix_wins_case_insensitively():
    assert format_from_suffix("a/b/RVS.FITS.GZ") == "fits"
    assert format_from_suffix("x.pq") == "parquet" and format_from_suffix("x.txt") is None


def test_input_readers_and_catalogues_share_the_table():
    for suffix, fmt in SUFFIX_FORMATS.items():
        assert infer_format(f"file{suffix}", b"") == ASTROPY_FORMATS[fmt]
        if fmt in CATALOG_FORMATS:
            assert format_of(f"cat{suffix}") == fmt
