"""Rewrite passes over Programs (each Program -> Program, in its own file) and the pipeline."""
from .pipeline import CHANNELS_LAST_PIPELINE, DEFAULT_PIPELINE, PASSES, PlannedPass, plan_passes, resolve, run_pipeline

__all__ = ["CHANNELS_LAST_PIPELINE", "DEFAULT_PIPELINE", "PASSES", "PlannedPass", "plan_passes", "resolve", "run_pipeline"]
