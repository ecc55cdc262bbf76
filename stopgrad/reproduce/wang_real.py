"""Claim set ``wang-2021-real``: DirectCopy against DirectPred and trained predictors on STL-10,
CIFAR-10 and CIFAR-100 (Wang, Chen, Du & Tian, arXiv 2110.04947, Sec. 6 and its tables).

Every variant is a ``configs/<folder>/`` preset of DirectPred's reference setting
(``<folder>/predictor-family``): DirectPred, DirectCopy, BYOL with a trained linear predictor and
BYOL with its 2-layer MLP predictor, 3 seeds each, 100 epochs, kNN and linear probe at the end.
"""

from __future__ import annotations

from typing import Any

from stopgrad.reproduce.base import Claim, Verdict
from stopgrad.reproduce.real import RealClaimSet, claim_for, mean, register
from stopgrad.sweep import Variant

# --- criteria, fixed before the runs ------------------------------------------------------------
RIVALS = 0.005  # "rivals or beats": DirectCopy's mean kNN >= DirectPred's minus this
VARIANTS = ("directpred", "directcopy", "byol-linear", "byol-mlp")

CLAIMS = {
    "directcopy-rivals-directpred": Claim(
        id="directcopy-rivals-directpred", source="Sec. 6, Tables 1-3",
        statement="DirectCopy rivals or beats DirectPred",
        paper_value="STL-10, CIFAR-10, CIFAR-100: DirectCopy >= DirectPred within noise",
        measure="mean kNN top-1 of DirectCopy minus DirectPred's", criterion=f"difference >= -{RIVALS:g}"),
    "directcopy-cheaper": Claim(
        id="directcopy-cheaper", source="Sec. 5 (no eigendecomposition)",
        statement="DirectCopy's update costs less than DirectPred's",
        paper_value="no eigendecomposition per update",
        measure="training images/s of DirectCopy over DirectPred's (mean over seeds)", criterion="ratio > 1"),
}


def variants(folder: str) -> list[Variant]:
    return [Variant(v, f"{folder}/{v}") for v in VARIANTS]


def decide(folder: str, table: dict[str, dict[str, Any]], per_seed: dict[str, list[dict]]) -> list[Verdict]:
    diffs = [c.get("knn_top1", float("nan")) - p.get("knn_top1", float("nan"))
             for c, p in zip(per_seed["directcopy"], per_seed["directpred"])]
    d = mean(table, "directcopy") - mean(table, "directpred")
    detail = "; ".join(f"{v}: kNN {mean(table, v):.4f}, linear {mean(table, v, 'linear_top1'):.4f}" for v in VARIANTS)
    ratio = mean(table, "directcopy", "images_per_s") / mean(table, "directpred", "images_per_s")
    return [Verdict(claim_for(CLAIMS, "directcopy-rivals-directpred", folder), diffs, holds=d >= -RIVALS, detail=detail),
            Verdict(claim_for(CLAIMS, "directcopy-cheaper", folder), [ratio], holds=ratio > 1,
                    detail="images/s: " + ", ".join(f"{v} {mean(table, v, 'images_per_s'):.0f}" for v in VARIANTS))]


CLAIM_SET = register(RealClaimSet(
    name="wang-2021-real", paper="Wang, Chen, Du & Tian (arXiv 2110.04947), real-data claims",
    description="STL-10, CIFAR-10, CIFAR-100: DirectCopy vs DirectPred vs trained linear vs MLP predictor "
                "(DirectPred's reference setting, 100 epochs; GPU)",
    folders=("stl10", "cifar10", "cifar100"), variants=variants, claims=CLAIMS, decide=decide))
