from recbole_bbq.trainer.base import TrainingRunMixin
from recbole_bbq.trainer.two_stage import TwoStageTrainer

__all__ = ["TrainingRunMixin", "TwoStageTrainer"]
