"""Rewrite passes over Programs (each Program -> Program, in its own file) and the pipeline."""
from .pipeline import DEFAULT_PIPELINE, PASSES, PlannedPass, plan_passes, resolve, run_pipeline

__all__ = ["DEFAULT_PIPELINE", "PASSES", "PlannedPass", "plan_passes", "resolve", "run_pipeline"]
