from recbole_bbq.trainer.two_stage import CompatTrainerMixin, TwoStageTrainer

__all__ = ["CompatTrainerMixin", "TwoStageTrainer"]
