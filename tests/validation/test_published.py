"""``validate --against published``: our labels vs the paper's released catalogue (issue 15).

The released file is written here in the layout of the paper's Table 2 (``sourceid``,
``teff``, ``eteff``, ``sigma_teff``, ..., ``flag_boundary`` as an *integer*, so flags with
leading zeros lose them), from a seeded synthetic catalogue; ours is another draw of the
same stars with a known offset, which the comparison must recover.
"""
from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table, join
from click.testing import CliRunner

from gaiarvs_cnn.archives.published import pad_flags, read_published
from gaiarvs_cnn.exceptions import InputDataError
from gaiarvs_cnn.validation.published import flag_agreement, validate_published
from gaiarvs_cnn.validation.synthetic import synthetic_catalog, synthetic_truth

OFFSET = {"teff": 60.0, "logg": -0.08, "mh": 0.03, "feh": 0.0, "alpham": -0.02}
FLIPPED = 37  # stars whose parallax digit (7) differs between the catalogues


@pytest.fixture(scope="module")
def stars(tmp_path_factory):
    truth = synthetic_truth(1200, seed=201)
    ours = synthetic_catalog(truth, seed=202, bias=OFFSET)
    released = synthetic_catalog(truth, seed=203)
    flags = np.asarray(ours["flag_boundary"]).astype("<U8").copy()
    rng = np.random.default_rng(204)
    flip = rng.choice(len(flags), FLIPPED, replace=False)
    flags[flip] = [f[:6] + ("1" if f[6] == "0" else "0") + f[7] for f in flags[flip]]
    released["flag_boundary"] = flags
    csv = released.copy()
    csv.rename_column("source_id", "sourceid")
    csv["flag_boundary"] = np.array([int(f) for f in flags], dtype=np.int64)  # as released
    path = tmp_path_factory.mktemp("published") / "cnn_gaia_rvs_catalog.csv"
    csv.write(path, format="ascii.csv")
    data = join(ours, truth["source_id", "rvs_snr"], keys="source_id")
    return data, path, flip


def test_released_csv_is_read_with_padded_flags(stars):
    _, path, _ = stars
    assert "00000010" not in path.read_text().split("\n")[1]  # integers in the file
    pub = read_published(path)
    assert pub["flag_boundary"].dtype.str == "<U8"
    assert set(pub["flag_boundary"].tolist()) <= {"00000000", "10000000", "00000010",
                                                   "10000010"}
    assert pub["source_id"].dtype == np.int64 and pub["teff"].unit == "K"
    assert {"e_teff", "emodel_teff"} <= set(pub.colnames)


def test_injected_offset_is_recovered(stars):
    data, path, flip = stars
    result = validate_published(data, read_published(path))
    stats = result.tables["stats"]
    for label, offset in OFFSET.items():
        row = stats[(stats["label"] == label) & (stats["subset"] == "all")][0]
        assert row["n"] == len(data)
        assert abs(row["bias"] - offset) < 5 * row["e_bias"] + 1e-6, (label, row["bias"])
    subsets = set(stats["subset"])
    assert {"snr 15-25", "snr 25-50", "snr >=50", "giants", "dwarfs"} <= subsets
    flags = result.tables["flags"]
    parallax = flags[flags["position"] == "parallax"][0]
    assert parallax["ours_0_published_1"] + parallax["ours_1_published_0"] == FLIPPED
    assert np.all(flags["agreement"][flags["position"] != "parallax"][:-1] == 1.0)
    whole = flags[flags["position"] == "all"][0]
    assert whole["agreement"] == pytest.approx(1 - FLIPPED / len(data))
    assert set(result.figures) == {"comparison", "flags"}


def test_flag_agreement_counts():
    t = flag_agreement(["00000000", "10000000", "10000001"],
                       ["00000000", "00000000", "10000001"])
    teff = t[0]
    assert (teff["both_0"], teff["ours_1_published_0"], teff["both_1"]) == (1, 1, 1)
    assert t[-1]["agreement"] == pytest.approx(2 / 3)


def test_pad_flags_errors():
    assert pad_flags(["1", 10]).tolist() == ["00000001", "00000010"]
    with pytest.raises(InputDataError, match="not 8 digits"):
        pad_flags([123456789])
    with pytest.raises(InputDataError, match="not 8 digits"):
        pad_flags([20000000])


def test_not_the_released_layout_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.csv"
    Table({"source_id": [1], "teff": [5000.0]}).write(bad, format="ascii.csv")
    with pytest.raises(InputDataError, match=r"x.csv is not in the released layout.*lacks"):
        read_published(bad)


@pytest.mark.filterwarnings("ignore:The unit .* could not be saved in native FITS")
def test_validate_cli_against_published(stars, tmp_path):
    from gaiarvs_cnn.cli import main
    from gaiarvs_cnn.validation.synthetic import synthetic_store

    data, path, _ = stars
    truth = synthetic_truth(1200, seed=201)
    store = synthetic_store(tmp_path / "s.h5", truth)
    cat = tmp_path / "ours.fits"
    data["source_id", *[c for c in data.colnames if c not in ("source_id", "rvs_snr")]].write(
        cat)
    result = CliRunner().invoke(main, [
        "validate", "--catalog", str(cat), "--store", str(store), "--against", "published",
        "--reference", f"published={path}", "--out", str(tmp_path / "rep"),
        "--formats", "none"])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "rep").rglob("*.ecsv"))
    assert any("published" in n for n in written), written
