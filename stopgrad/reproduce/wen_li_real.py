"""Claim set ``wen-li-2022-real``: the linear prediction heads of Wen & Li (NeurIPS 2022, arXiv
2205.06226, Sec. 5) on CIFAR-10 and STL-10.

Variants, all in DirectPred's reference setting (``<folder>/predictor-family``): the
identity-initialised head with its diagonal fixed, the same head fully trained, a trained random
linear head, the MLP predictor, and the identity frozen (no head at all in effect). The heads'
``‖offdiag W‖``, ``‖diag W‖`` and asymmetry are logged over training; the rise-and-fall rule is
the one of ``wen-li-2022-fmnist`` (:func:`stopgrad.reproduce.wen_li_fmnist.rises_and_falls`).
"""

from __future__ import annotations

from typing import Any

from stopgrad.reproduce.base import Claim, Verdict, fraction, mean_of
from stopgrad.reproduce.real import RealClaimSet, claim_for, mean, register
from stopgrad.reproduce.wen_li_fmnist import MIN_FRACTION, RISE_FALL_MEASURE, rises_and_falls, trajectory
from stopgrad.sweep import Variant

# --- criteria, fixed before the runs ------------------------------------------------------------
COMPETITIVE = 0.02  # fixed-diagonal kNN >= MLP predictor's minus this
DIAG_EVERY = 50

CLAIMS = {
    "fixed-diagonal-competitive": Claim(
        id="fixed-diagonal-competitive", source="Sec. 5", statement="An identity-initialised head with a fixed "
        "diagonal learns representations competitive with an MLP predictor",
        paper_value="competitive (their tables)", measure="mean kNN of fixed-diagonal minus the MLP predictor's",
        criterion=f"difference >= -{COMPETITIVE:g}"),
    "offdiag-rise-fall": Claim(
        id="offdiag-rise-fall", source="Sec. 5", statement="The off-diagonal entries of the fixed-diagonal head "
        "rise and then fall", paper_value="rise, then fall (their figures)",
        measure=RISE_FALL_MEASURE,
        criterion=f"fraction of seeds >= {MIN_FRACTION}"),
    "trained-head-beats-frozen": Claim(
        id="trained-head-beats-frozen", source="Sec. 5 / Thm 3", statement="Training the off-diagonal entries "
        "beats the identity frozen (which the theory says collapses dimensionally)",
        paper_value="frozen identity: dimensional collapse", measure="mean kNN of fixed-diagonal minus frozen identity",
        criterion="difference > 0"),
}


def variants(folder: str) -> list[Variant]:
    diag = (f"train.diag_every={DIAG_EVERY}",)
    return [Variant("fixed-diagonal", f"{folder}/fixed-diagonal", diag),
            Variant("identity", f"{folder}/identity", diag),
            Variant("random-linear", f"{folder}/byol-linear", diag),
            Variant("mlp", f"{folder}/byol-mlp", diag),
            Variant("frozen-identity", f"{folder}/identity", ("method.predictor=frozen-identity",
                                                              "method.track_correlation=false", *diag))]


def decide(folder: str, table: dict[str, dict[str, Any]], per_seed: dict[str, list[dict]]) -> list[Verdict]:
    runs = [r["run_dir"] for r in per_seed["fixed-diagonal"]]
    flags = [rises_and_falls(trajectory(run, "diag/offdiag_norm")[1]) for run in runs]
    d_mlp = mean(table, "fixed-diagonal") - mean(table, "mlp")
    d_frozen = mean(table, "fixed-diagonal") - mean(table, "frozen-identity")
    knn = "; ".join(f"{v}: kNN {mean(table, v):.4f}" for v in table)
    return [Verdict(claim_for(CLAIMS, "fixed-diagonal-competitive", folder), [d_mlp], holds=d_mlp >= -COMPETITIVE,
                    detail=knn),
            Verdict(claim_for(CLAIMS, "offdiag-rise-fall", folder), fraction(flags),
                    holds=mean_of(fraction(flags)) >= MIN_FRACTION, detail=knn),
            Verdict(claim_for(CLAIMS, "trained-head-beats-frozen", folder), [d_frozen], holds=d_frozen > 0, detail=knn)]


CLAIM_SET = register(RealClaimSet(
    name="wen-li-2022-real", paper="Wen & Li (NeurIPS 2022, arXiv 2205.06226), real-data claims",
    description="CIFAR-10, STL-10: fixed-diagonal vs trained identity vs random linear vs MLP vs frozen identity "
                "heads, off-diagonal norm over training (DirectPred's reference setting; GPU)",
    folders=("cifar10", "stl10"), variants=variants, claims=CLAIMS, decide=decide))
