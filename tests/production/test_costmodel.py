"""The cost model's arithmetic and its figure (``docs/costmodel.rst``)."""
import pytest

from gaiarvs_cnn.production.costmodel import (
    RELEASES,
    cost_figure,
    cost_table,
    inference_hours,
    training_hours,
)

MPL = {"tolerance": 2, "savefig_kwargs": {"dpi": 60}}


def test_inference_scales_with_stars_and_divides_by_workers():
    assert inference_hours(3.6, 1e6) == pytest.approx(1.0)
    assert inference_hours(3.6, 2e6, workers=4) == pytest.approx(0.5)
    table = cost_table(7.2, workers=(1, 10))
    assert table["DR5"]["core_hours"] == pytest.approx(2e8 * 7.2 / 3.6e6)
    assert table["DR3"]["n_stars"] == RELEASES["DR3"] == 886_080
    assert table["DR4"]["wall_hours_on_workers"] == {"1": 60.0, "10": 6.0}


def test_training_workers_gain_nothing_beyond_one_member_each():
    core, wall = training_hours(2.0, n_members=28, n_train_stars=45_000, epochs=100)
    assert core == pytest.approx(28 * 2.0 * 45 * 100 / 3600) and wall == pytest.approx(core)
    member = core / 28
    assert training_hours(2.0, n_members=28, n_train_stars=45_000, epochs=100,
                          workers=8)[1] == pytest.approx(4 * member)   # ceil(28 / 8)
    for workers in (28, 1024):
        assert training_hours(2.0, n_members=28, n_train_stars=45_000, epochs=100,
                              workers=workers) == (pytest.approx(core), pytest.approx(member))


@pytest.mark.mpl_image_compare(filename="costmodel_figure.png", **MPL)
def test_cost_figure():
    fig = cost_figure({"shipped bundle": 7.7, "paper network": 39.2},
                      {"shipped bundle": 0.32, "paper network": 71.7})
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 4 + len(RELEASES)   # 2 inference, 2 training, releases
    assert ax.get_xscale() == ax.get_yscale() == "log"
    return fig
