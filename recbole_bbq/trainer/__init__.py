from recbole_bbq.trainer.base import CompatTrainerMixin
from recbole_bbq.trainer.two_stage import TwoStageTrainer

__all__ = ["CompatTrainerMixin", "TwoStageTrainer"]
