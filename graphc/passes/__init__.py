"""Rewrite passes over Programs (each Program -> Program, in its own file) and the pipeline."""
from .fuse import FusionGroup
from .pipeline import DEFAULT_PIPELINE, PASSES, resolve, run_pipeline

__all__ = ["DEFAULT_PIPELINE", "PASSES", "FusionGroup", "resolve", "run_pipeline"]
