"""Custom training loops under ``tf.distribute`` (TensorFlow-only stage)."""

from semembed.training.config import MetricConfig, TrainConfig
from semembed.training.schedules import LearningRateSchedule, ScheduleConfig

__all__ = ["LearningRateSchedule", "MetricConfig", "ScheduleConfig", "TrainConfig"]
