"""recbole_bbq: BBQRec, its ablation variants, TIGER and LETTER as a RecBole 1.2.1 plugin."""
from recbole_bbq import compat as _compat

_compat.apply()

__version__ = "0.1.0"
