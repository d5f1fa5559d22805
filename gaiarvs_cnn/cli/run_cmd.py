"""``gaiarvs-cnn run CONFIG``: a whole run from one configuration file (resumable)."""
from __future__ import annotations

from pathlib import Path

import click

from . import main, set_output


@main.command("run")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--plan", "plan_only", is_flag=True,
              help="Probe the selections and services, print the stages with what each "
                   "will download (requests, bytes) and compute (core-hours); run nothing.")
@click.option("--example", is_flag=True,
              help="Print the shipped configuration reproducing Guiglion, Nepal et al. "
                   "2024 (save it, edit it, run it).")
@click.option("--until", metavar="STAGE", default=None,
              help="Stop after this stage (fetch-training, train, calibrate, fetch-observed, "
                   "predict, fetch-references, validate); run again to continue.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run_command(config, plan_only, example, until, quiet):
    """Fetch, train, calibrate, predict and validate as CONFIG (a TOML file) describes.

    Stages, in order: fetch-training, train, calibrate, fetch-observed, predict,
    fetch-references, validate. Each resumes from its own state and a stage done is
    skipped: start the same command again after an interruption. A bad configuration,
    a selection without stars or a service that does not answer stops the run before
    anything is downloaded. Everything goes into the run's folder (run.output): the
    configuration, provenance.json, run.log, the catalogue and the validation report
    (validation/summary.html).

    \b
    Examples:
      gaiarvs-cnn run --example > paper.toml
      gaiarvs-cnn run paper.toml --plan
      gaiarvs-cnn run paper.toml --until train    # the bundle only, for now
      gaiarvs-cnn run paper.toml
    """
    from ..pipeline import load_run_config, paper_config_path, run_pipeline

    if example:
        click.echo(paper_config_path().read_text(encoding="utf-8"), nl=False)
        return
    if config is None:
        raise click.UsageError("Give the run's configuration file (or --example).")
    if not config.is_file():
        raise click.BadParameter(f"no file {config}.", param_hint="CONFIG")
    cfg = load_run_config(config)
    set_output(cfg.output)
    result = run_pipeline(cfg, progress=not quiet, plan_only=plan_only, until=until,
                          echo=click.echo)
    if not plan_only:
        click.echo("\n".join(result.lines()))
