"""Paper reproductions: ``stopgrad reproduce NAME`` runs a claim set and writes its verdicts.

Importing this package registers every claim set (one module per paper).
"""

from stopgrad.reproduce.base import (CLAIM_SETS, Claim, ClaimSet, Verdict, get_claim_set,
                                     register_claim_set, run_claim_set)

__all__ = ["CLAIM_SETS", "Claim", "ClaimSet", "Verdict", "get_claim_set", "register_claim_set",
           "run_claim_set"]

from stopgrad.reproduce import wen_li  # noqa: E402,F401  (registers wen-li-2022)
from stopgrad.reproduce import jha  # noqa: E402,F401  (registers jha-2023)
from stopgrad.reproduce import jha_fmnist  # noqa: E402,F401  (registers jha-2023-fmnist)
from stopgrad.reproduce import wang  # noqa: E402,F401  (registers wang-2021)
from stopgrad.reproduce import wen_li_fmnist  # noqa: E402,F401  (registers wen-li-2022-fmnist)
from stopgrad.reproduce import wang_real  # noqa: E402,F401  (registers wang-2021-real)
from stopgrad.reproduce import wen_li_real  # noqa: E402,F401  (registers wen-li-2022-real)
from stopgrad.reproduce import jha_real  # noqa: E402,F401  (registers jha-2023-real)
