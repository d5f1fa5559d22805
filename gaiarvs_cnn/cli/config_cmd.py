"""``gaiarvs-cnn config``: the configuration file in use and every setting's origin."""
from __future__ import annotations

import click

from . import main


@main.command("config")
def config_command():
    """Print the configuration file in use and every setting, its value and its origin.

    The origin is "default" (built-in), "file" (set in the configuration file) or
    "session" (changed in this process). To write a commented template of the file:
    python -c "from astropy.config import create_config_file; create_config_file('gaiarvs_cnn')"

    \b
    Examples:
      gaiarvs-cnn config
    """
    from ..settings import config_file, config_report

    path = config_file()
    state = "exists" if path.exists() else "not present: all defaults"
    click.echo(f"configuration file: {path} ({state})")
    rows = config_report()
    width = max(len(r.name) for r in rows)
    for r in rows:
        click.echo(f"  {r.name:<{width}} = {r.value!r:<45} [{r.origin}]")
