"""gc.callbacks: Keras' callbacks for gc.Sequential.fit (defined in graphc.models)."""
from __future__ import annotations

from .models import Callback, CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "LearningRateScheduler", "ModelCheckpoint"]
