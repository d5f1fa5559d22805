"""One run from the archives to the validated catalogue, described by one TOML file.

- `~gaiarvs_cnn.pipeline.config` -- the run description (`load_run_config`, `RunConfig`);
- `~gaiarvs_cnn.pipeline.costs` -- the per-star costs of the cost model;
- `~gaiarvs_cnn.pipeline.plan` -- the probe of the selections and services, and the plan;
- `~gaiarvs_cnn.pipeline.stages` -- the stages and the files of the run's folder;
- `~gaiarvs_cnn.pipeline.run` -- `run_pipeline`, the run itself (resumable).

The pipeline is the layer above `gaiarvs_cnn.production` and `gaiarvs_cnn.validation`,
which it chains; only the command line is above it.
"""
from .config import RunConfig, RunConfigError, load_run_config, paper_config_path
from .plan import Probe, StagePlan, format_plan, plan_run, probe_run
from .run import RunResult, run_pipeline
from .stages import STAGES, RunFolder

__all__ = ["RunConfig", "RunConfigError", "load_run_config", "paper_config_path", "Probe",
           "StagePlan", "format_plan", "plan_run", "probe_run", "RunResult", "run_pipeline",
           "STAGES", "RunFolder"]
