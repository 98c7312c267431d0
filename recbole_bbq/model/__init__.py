"""Every model of the plugin, by the name users pass as ``--model``."""
from recbole_bbq.model.bbqrec import (
    BBQRec,
    BBQRec_E,
    BBQRec_noID,
    BBQRec_noImage,
    BBQRec_noMIM,
    BBQRec_noRec,
    BBQRec_noText,
    BBQRec_noU,
    BBQRec_S,
)
from recbole_bbq.model.generative import GenerativeRecommender
from recbole_bbq.model.letter import LETTER
from recbole_bbq.model.tiger import TIGER

__all__ = [
    "TIGER",
    "LETTER",
    "BBQRec",
    "BBQRec_noMIM",
    "BBQRec_noRec",
    "BBQRec_noU",
    "BBQRec_S",
    "BBQRec_E",
    "BBQRec_noID",
    "BBQRec_noText",
    "BBQRec_noImage",
]
