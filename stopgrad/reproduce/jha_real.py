"""Claim set ``jha-2023-real``: the real-image claims of Jha, Blaschko, Asano & Tuytelaars (arXiv
2402.14957) on ImageNet-100, with CIFAR-10 as the cheaper setting.

Variants (each a ``configs/<folder>/`` preset with overrides): SimSiam; SimSiam without its
predictor and without the stop-gradient (Sec. 3.2); SimSiam's predictor learning rate at 1% and
10% (100% is SimSiam; App. B.4); BYOL's EMA momentum held at 0.9, 0.99 and 0.996 (Sec. 3.5); Barlow
Twins with and without its off-diagonal term (Fig. 5); DINO with and without centering (App. B.2);
and the Simple objective (eq. 32). ‖s‖ is read before the projector's BN
(``diag/center_norm_pre_bn``) and after it (``diag/center_norm``).
"""

from __future__ import annotations

from typing import Any

from stopgrad.reproduce.base import Claim, Verdict
from stopgrad.reproduce.real import RealClaimSet, claim_for, mean, register
from stopgrad.sweep import Variant

# --- criteria, fixed before the runs ------------------------------------------------------------
COLLAPSE_FRACTION = 0.5  # the collapse alarm fires in at least half of the seeds
WORKS = 0.05  # "works": kNN within this of the full method's
SIMPLE = 0.01  # Simple's kNN >= SimSiam's minus this
PRE, POST = "diag/center_norm_pre_bn", "diag/center_norm"


def variants(folder: str) -> list[Variant]:
    f = folder
    return [Variant("simsiam", f"{f}/simsiam"),
            Variant("simsiam-no-predictor", f"{f}/simsiam", ("method.predictor=none",)),
            Variant("simsiam-no-stopgrad", f"{f}/simsiam", ("method.stop_grad=false",)),
            Variant("simsiam-predlr-1pct", f"{f}/simsiam", ("method.pred_lr_mult=0.01",)),
            Variant("simsiam-predlr-10pct", f"{f}/simsiam", ("method.pred_lr_mult=0.1",)),
            *[Variant(f"byol-ema-{m}", f"{f}/byol", (f"method.ema=[{m},{m}]",)) for m in ("0.9", "0.99", "0.996")],
            Variant("barlow", f"{f}/barlow"), Variant("barlow-no-offdiag", f"{f}/barlow", ("method.off_diagonal=false",)),
            Variant("dino", f"{f}/dino"), Variant("dino-no-centering", f"{f}/dino", ("method.centering=false",)),
            Variant("simple", f"{f}/simple")]


def _claim(cid: str, source: str, statement: str, measure: str, criterion: str, paper: str) -> Claim:
    return Claim(id=cid, source=source, statement=statement, measure=measure, criterion=criterion, paper_value=paper)


CLAIMS = {c.id: c for c in (
    _claim("ablations-collapse", "Sec. 3.2, Fig. 4", "SimSiam without predictor, and without stop-gradient, "
           "collapses with a larger center vector", "per ablation: ‖s‖ (pre-BN) minus SimSiam's, and collapse alarms",
           "both ‖s‖ differences > 0", "Fig. 4: ‖s‖ high for both ablations"),
    _claim("predlr-1pct-collapses", "App. B.4, Fig. B.6", "SimSiam with its predictor lr at 1% collapses",
           "fraction of seeds whose collapse alarm fired", f"fraction >= {COLLAPSE_FRACTION}", "Fig. B.6: collapse at 1%"),
    _claim("predlr-accuracy-rises", "App. B.4, Fig. B.6", "SimSiam's kNN rises with the predictor lr (1% < 10% < 100%)",
           "kNN at 10% minus 1%, and 100% minus 10%", "both > 0", "Fig. B.6"),
    _claim("ema-center-grows", "Sec. 3.5, Fig. 7", "Lower BYOL momentum gives a larger center vector",
           "‖s‖ (pre-BN) at 0.9 minus 0.99, and 0.99 minus 0.996", "both > 0", "Fig. 7"),
    _claim("barlow-works-without-offdiag", "Sec. 3.4, Fig. 5", "Barlow Twins works without its off-diagonal term",
           "kNN without the term minus with it", f"difference >= -{WORKS:g}", "Fig. 5"),
    _claim("dino-collapses-without-centering", "App. B.2", "DINO collapses without centering",
           "fraction of seeds whose collapse alarm fired", f"fraction >= {COLLAPSE_FRACTION}", "App. B.2"),
    _claim("simple-rivals-simsiam", "Sec. 4, eq. 32", "The Simple objective learns as well as SimSiam",
           "kNN of Simple minus SimSiam's", f"difference >= -{SIMPLE:g}", "Simple outperforms SimSiam (toy data)"),
)}


def decide(folder: str, table: dict[str, dict[str, Any]], per_seed: dict[str, list[dict]]) -> list[Verdict]:
    def alarms(name: str) -> list[float]:
        return [1.0 if r.get("collapse_alarm") else 0.0 for r in per_seed[name]]

    def v(cid: str, values: list[float], holds: bool, detail: str) -> Verdict:
        return Verdict(claim_for(CLAIMS, cid, folder), values, holds=bool(holds), detail=detail)

    s = {n: (mean(table, n, PRE), mean(table, n, POST)) for n in table}
    knn = {n: mean(table, n) for n in table}
    sdetail = "; ".join(f"{n}: ‖s‖ {a:.3f} pre-BN / {b:.3f} post-BN, kNN {knn[n]:.4f}" for n, (a, b) in s.items())
    d_abl = [s["simsiam-no-predictor"][0] - s["simsiam"][0], s["simsiam-no-stopgrad"][0] - s["simsiam"][0]]
    d_lr = [knn["simsiam-predlr-10pct"] - knn["simsiam-predlr-1pct"], knn["simsiam"] - knn["simsiam-predlr-10pct"]]
    d_ema = [s["byol-ema-0.9"][0] - s["byol-ema-0.99"][0], s["byol-ema-0.99"][0] - s["byol-ema-0.996"][0]]
    a1, ad = alarms("simsiam-predlr-1pct"), alarms("dino-no-centering")
    return [v("ablations-collapse", d_abl, all(d > 0 for d in d_abl), sdetail),
            v("predlr-1pct-collapses", a1, sum(a1) / len(a1) >= COLLAPSE_FRACTION, sdetail),
            v("predlr-accuracy-rises", d_lr, all(d > 0 for d in d_lr), sdetail),
            v("ema-center-grows", d_ema, all(d > 0 for d in d_ema), sdetail),
            v("barlow-works-without-offdiag", [knn["barlow-no-offdiag"] - knn["barlow"]],
              knn["barlow-no-offdiag"] - knn["barlow"] >= -WORKS, sdetail),
            v("dino-collapses-without-centering", ad, sum(ad) / len(ad) >= COLLAPSE_FRACTION, sdetail),
            v("simple-rivals-simsiam", [knn["simple"] - knn["simsiam"]], knn["simple"] - knn["simsiam"] >= -SIMPLE,
              sdetail)]


CLAIM_SET = register(RealClaimSet(
    name="jha-2023-real", paper="Jha, Blaschko, Asano & Tuytelaars (arXiv 2402.14957), real-image claims",
    description="ImageNet-100 and CIFAR-10: SimSiam ablations, predictor lr, BYOL momentum, Barlow Twins without "
                "off-diagonal, DINO without centering, Simple vs SimSiam, with ‖s‖ before/after BN (GPU)",
    folders=("imagenet-100", "cifar10"), variants=variants, claims=CLAIMS, decide=decide))
