"""Every model of the plugin, by the name users pass as ``--model``."""
from recbole_bbq.model.generative import GenerativeRecommender
from recbole_bbq.model.tiger import TIGER

__all__ = ["TIGER"]
