"""The one registry of validation comparisons (issue 19): every list derives from it."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from gaiarvs_cnn.exceptions import InputDataError
from gaiarvs_cnn.validation import registry, runner
from gaiarvs_cnn.validation.registry import (
    comparison_names,
    get_comparison,
    needed_references,
    register_comparison,
)

BUILTIN = ("galah", "seismic", "clusters", "gsp-spec", "gsp-phot", "precision", "bimodality")


def test_builtin_comparisons_in_report_order():
    assert comparison_names()[:len(BUILTIN)] == BUILTIN
    assert runner.COMPARISONS == comparison_names()
    assert runner.REQUIRED_REFERENCES["seismic"] == ("seismic",)
    assert runner.OPTIONAL_REFERENCES["seismic"] == ("apogee", "gsp-spec")
    assert "bimodality" not in runner.OPTIONAL_REFERENCES
    assert needed_references(["seismic", "clusters"]) == (["clusters", "seismic"],
                                                          ["apogee", "galah", "gsp-spec"])
    with pytest.raises(InputDataError, match="Unknown comparison 'nope'"):
        get_comparison("nope")


def test_a_registered_comparison_reaches_the_runner_and_the_cli(monkeypatch):
    from gaiarvs_cnn.cli.validate import against_choices
    from gaiarvs_cnn.validation.report import ValidationResult

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    calls = []

    @register_comparison("toy", required=("galah",), optional=("apogee",), order=65)
    def _toy(data, refs, bounds):
        calls.append((len(data), sorted(refs)))
        return ValidationResult("toy")

    names = comparison_names()
    assert names.index("toy") == names.index("precision") + 1  # order 65
    assert "toy" in against_choices() and against_choices()[-1] == "all"
    assert runner.REQUIRED_REFERENCES["toy"] == ("galah",)
    from astropy.table import Table

    results = runner.run_validation(Table({"source_id": [1, 2]}), ["toy"],
                                   {"galah": Table({"source_id": [2, 3]})})
    assert [r.name for r in results] == ["toy"] and calls == [(2, ["galah"])]
    with pytest.raises(InputDataError, match=r"\['galah'\] needed"):
        runner.run_validation(Table({"source_id": [1]}), ["toy"], {})
    with pytest.raises(ValueError, match="already registered"):
        register_comparison("toy")(lambda d, r, b: None)


def test_cli_rejects_an_unregistered_comparison(tmp_path):
    from gaiarvs_cnn.cli import main

    cat = tmp_path / "c.fits"
    cat.write_bytes(b"")
    result = CliRunner().invoke(main, ["validate", "--catalog", str(cat), "--against", "nope"])
    assert result.exit_code == 2 and "galah" in result.output and "bimodality" in result.output
