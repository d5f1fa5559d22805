"""The configuration file location and ``gaiarvs-cnn config`` (issue 15)."""
from __future__ import annotations

from pathlib import Path

from astropy.config import create_config_file, get_config_dir
from astropy.config.paths import set_temp_config
from click.testing import CliRunner

from gaiarvs_cnn import conf
from gaiarvs_cnn.cli import main
from gaiarvs_cnn.settings import config_file, config_report


def test_documented_location_is_read(tmp_path):
    """docs/config.rst: gaiarvs_cnn.cfg in astropy.config.get_config_dir()."""
    with set_temp_config(tmp_path):
        path = Path(get_config_dir()) / "gaiarvs_cnn.cfg"
        assert config_file() == path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("timeout = 33.5\nretries = 7\n")
        conf.reload()
        try:
            assert conf.timeout == 33.5 and conf.retries == 7
            origins = {s.name: s.origin for s in config_report()}
            assert origins["timeout"] == "file" and origins["chunk_size"] == "default"
            with conf.set_temp("retries", 1):
                assert {s.name: s.origin for s in config_report()}["retries"] == "session"
            result = CliRunner().invoke(main, ["config"])
            assert result.exit_code == 0, result.output
            assert f"configuration file: {path} (exists)" in result.output
            line = next(ln for ln in result.output.splitlines() if "timeout" in ln)
            assert "33.5" in line and line.endswith("[file]")
        finally:
            path.unlink()
            conf.reload()
    assert conf.timeout == 120.0


def test_template_written_where_it_is_read(tmp_path):
    """The docs' create_config_file("gaiarvs_cnn") writes the file that is read."""
    with set_temp_config(tmp_path):
        assert create_config_file("gaiarvs_cnn")
        assert config_file().exists()
        assert "tap_upload_max_ids" in config_file().read_text()
        assert all(s.origin == "default" for s in config_report())


def test_config_command_without_file(tmp_path):
    with set_temp_config(tmp_path):
        result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0
    assert "not present: all defaults" in result.output
    assert all(name in result.output for name in ("gaia_tap_url", "cache_dir", "retries"))
