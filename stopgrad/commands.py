"""The commands of the ``stopgrad`` CLI (:mod:`stopgrad.cli` holds the parser and the error path).

Each ``cmd_<name>(args)`` runs one subcommand and returns its exit status; errors are raised and
:func:`stopgrad.cli.run_command` turns them into one ``stopgrad: error:`` line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from stopgrad.config import list_presets, resolve
from stopgrad.errors import RunFolderError, StopgradError


def cmd_train(args: argparse.Namespace) -> int:
    from stopgrad.train import train

    preset, overrides = args.preset, list(args.overrides)
    if preset and "=" in preset:  # `stopgrad train key=value` with no preset
        overrides.insert(0, preset)
        preset = None
    cfg = resolve(preset or "default", overrides)
    summary = train(cfg)
    print_summary(summary)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from stopgrad.train import resume

    summary = resume(args.run_dir)
    if summary.pop("already_finished", False):
        print(f"{args.run_dir} had already finished ({summary.get('steps')} steps); nothing to resume. Its summary:")
    print_summary(summary)
    return 0


def writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (tried, not guessed from permission bits)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".stopgrad-write-test-"):
            return True
    except OSError:
        return False


def cmd_eval(args: argparse.Namespace) -> int:
    from stopgrad import rundir
    from stopgrad.run_evaluation import knn_per_class
    from stopgrad.train import evaluate_knn, evaluate_linear, load_run

    run_dir = rundir.require_run_dir(Path(args.run_dir))
    out = Path(args.out) if args.out else run_dir / "summary.json"
    if not writable(out.parent if args.out else run_dir):  # say so now, not after a minute of work
        raise StopgradError(f"cannot write {out}: the folder is read-only or not writable; pass --out FILE "
                            "to write the result elsewhere")
    if args.per_class and args.kind != "knn":
        raise StopgradError("--per-class breaks down the kNN: use `stopgrad eval knn RUN --per-class`")
    run = load_run(run_dir, random_init=args.random_init or args.pixels)
    source = "pixels" if args.pixels else "backbone"
    prefix = "pixels_" if args.pixels else "random_init_" if args.random_init else ""
    if args.kind == "knn" and args.per_class:
        breakdown = knn_per_class(run, source=source)
        value = breakdown["top1"] if breakdown else None
        result = {f"{prefix}knn_top1": value, f"{prefix}knn_per_class": breakdown}
    elif args.kind == "knn":
        value = evaluate_knn(run, source=source)
        result = {f"{prefix}knn_top1": value}
    else:
        if args.epochs:
            run.cfg.eval.linear_protocol, run.cfg.eval.linear_epochs = "sgd", args.epochs
        probe = evaluate_linear(run, source=source)
        value = probe["linear_top1"] if probe else None
        result = {f"{prefix}linear_top1": value, f"{prefix}linear": probe["linear"] if probe else None}
    if value is None:
        raise StopgradError(f"{run.cfg.data.dataset} has no labelled test split here; nothing to evaluate")
    key = next(iter(result))
    print(f"{key} = {value:.4f}")  # printed first: a failed write below never loses it
    if f"{prefix}knn_per_class" in result:
        print(per_class_table(result[f"{prefix}knn_per_class"]))
    if args.kind == "linear":
        chosen = result[f"{prefix}linear"]
        if "l2" in chosen:
            print(f"  L2 penalty {chosen['l2']:g} chosen on {chosen['val_images']} held-out training images "
                  f"(validation top-1 by penalty: {chosen['val_top1']})")
    if args.out:
        doc = json.loads(out.read_text()) if out.exists() else {}
        doc.update({**result, "run_dir": str(run_dir)})
        rundir.atomic_write_text(out, json.dumps(doc, indent=2))
    else:
        rundir.write_summary(run_dir, result)
    print(f"written to {out}")
    return 0


def per_class_table(breakdown: dict) -> str:
    """Each class's kNN top-1 and the class its errors go to most often, worst class first."""
    names, conf = breakdown["classes"], breakdown["confusion"]
    width = max(len(n) for n in names)
    lines = [f"  {'class':<{width}}  top-1   most often taken for"]
    top1s = breakdown["per_class_top1"]
    order = sorted(range(len(names)), key=lambda i: (top1s[names[i]] is None, top1s[names[i]] or 0.0))
    for i in order:  # worst first; a class without test images last
        errors = [(c, j) for j, c in enumerate(conf[i]) if j != i]
        count, j = max(errors) if errors else (0, i)
        total = sum(conf[i])
        share = f"{names[j]} ({count} of {total})" if count else "-"
        top1 = breakdown["per_class_top1"][names[i]]
        lines.append(f"  {names[i]:<{width}}  {'  -   ' if top1 is None else f'{top1:.3f}'}  {share}")
    return "\n".join(lines)


def cmd_plot(args: argparse.Namespace) -> int:
    from stopgrad.plots import plot_runs

    paths = plot_runs([Path(d) for d in args.run_dirs], Path(args.out) if args.out else None)
    for p in paths:
        print(p)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from stopgrad.report import write_report

    print(write_report([Path(d) for d in args.run_dirs], Path(args.out) if args.out else None))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from stopgrad.reproduce import CLAIM_SETS, run_claim_set

    if args.name.lower() == "list":
        width = max(len(n) for n in CLAIM_SETS)
        for name, cs in sorted(CLAIM_SETS.items()):
            views = f" [views {cs.views}]" if cs.views else ""
            views += f" [backbone {cs.backbone}]" if cs.backbone else ""
            print(f"{name:<{width}}  {cs.paper}: {cs.description}{views}")
        return 0
    if args.name not in CLAIM_SETS:
        raise StopgradError(f"unknown claim set {args.name!r}; known: {', '.join(sorted(CLAIM_SETS))} "
                            "(`stopgrad reproduce list`)")
    out = Path(args.out or f"runs/reproduce/{args.name}{'-quick' if args.quick else ''}")
    doc = run_claim_set(args.name, out, seeds=args.seeds, quick=args.quick, views=args.views,
                        backbone=args.backbone)
    if doc["quick"]:
        print(doc["note"])
    width = max(len(c["id"]) for c in doc["claims"])
    verdict_width = max(len(c["verdict"]) for c in doc["claims"])
    for c in doc["claims"]:
        m = c["measured"]
        print(f"{c['id']:<{width}}  {c['verdict']:<{verdict_width}}  "
              f"{m['mean']:.3g} ± {m['std']:.2g} (n={m['n']})  [{c['criterion']}]")
    tag = " (smoke test, not a verdict)" if doc["quick"] else ""
    print(f"{doc['holds']}/{doc['total']} claims hold{tag}; {doc['runtime_s']:.0f} s; "
          f"{out / 'claims.json'}, {out / 'report.html'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from stopgrad.grid import SlurmOptions, parse_grid, submit
    from stopgrad.sweep import run_grid, write_table

    preset, overrides = args.preset, list(args.overrides)
    if preset and "=" in preset:
        overrides.insert(0, preset)
        preset = None
    grid = parse_grid(preset, overrides)
    out = Path(args.out or f"runs/sweep-{(grid.preset).replace('/', '-')}")
    grid_cells = grid.cells(out)
    print(f"stopgrad: sweep of {len(grid.variants)} variant(s) x {len(grid.seeds)} seed(s) in {out} "
          f"({sum(c.done for c in grid_cells)} already done), launcher {args.launcher}", file=sys.stderr)
    if args.launcher == "local":
        run_grid(grid_cells, args.jobs, args.threads, log=lambda m: print(f"stopgrad: {m}", file=sys.stderr))
    else:
        opts = SlurmOptions(partition=args.partition, time_min=args.time, gpus=args.gpus, cpus=args.cpus,
                            array=args.array)
        submit(grid_cells, opts, local=args.launcher == "slurm-local", threads=args.threads)
    failed = [c for c in grid_cells if not c.done]
    write_table(out, [v.name for v in grid.variants])
    if failed:
        raise StopgradError(f"{len(failed)} of {len(grid_cells)} runs did not finish: " + ", ".join(
            f"{c.variant.name}/seed{c.seed} (log {c.run_dir.with_suffix('.log')})" for c in failed)
            + "; rerun the same command to resume them")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from stopgrad import rundir
    from stopgrad.export import export_backbone

    run_dir = rundir.require_run_dir(Path(args.run_dir))
    out = Path(args.out) if args.out else run_dir / "backbone.safetensors"
    meta = export_backbone(run_dir, out)
    print(f"{out} ({meta['backbone']}, {meta['feat_dim']}-d features; {out.with_suffix('.json')}): the reloaded "
          f"backbone's features of {meta['check']['images']} images equal the run's bit for bit")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from stopgrad.sweep import aggregate, markdown, write_table

    table = aggregate(Path(args.root))
    if not table:
        raise RunFolderError(f"no finished runs under {args.root}: expected {args.root}/<variant>/seed<k> or "
                             f"{args.root}/<variant>-seed<k> folders with a summary.json")
    if args.out:
        write_table(Path(args.root), None, out=Path(args.out), table=table)
        print(f"written to {args.out}/table.md, table.json and table.png")
    else:
        print(markdown(table))
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from stopgrad.methods import METHODS

    width = max(len(n) for n in METHODS)
    for name, cls in sorted(METHODS.items()):
        print(f"{name:<{width}}  {cls.description}")
    return 0


SHARED_PRESETS = ("base", "predictor-family")  # settings the method presets share; no run of their own


def cmd_presets(args: argparse.Namespace) -> int:
    from stopgrad.presets import describe

    names = [n for n in list_presets() if n.startswith(getattr(args, "prefix", "") or "")]
    if not names:
        raise StopgradError(f"no preset starts with {args.prefix!r}; `stopgrad presets` lists them all")
    width = max(len(n) for n in names)
    if not getattr(args, "cost", False):
        for name in names:
            print(f"{name:<{width}}  {describe(name)}")
        return 0
    from stopgrad.cost import REFERENCE_GPU, preset_cost

    print(f"{'preset':<{width}}  {'method':<10} {'backbone':<9} {'epochs':>6} {'GFLOP/step':>10} "
          f"{'GPU-min/epoch':>13} {'GPU-h':>7}")
    sources = set()
    for name in names:
        if name.rsplit("/", 1)[-1] in SHARED_PRESETS:
            continue
        cfg = resolve(name)
        c = preset_cost(cfg, name)
        sources.add(c.source)
        print(f"{name:<{width}}  {cfg.method_name:<10} {cfg.model.backbone:<9} {c.epochs:>6g} {c.gflop_per_step:>10.0f} "
              f"{60 * c.gpu_hours_per_epoch:>13.2f} {c.gpu_hours:>7.2f}")
    print(f"GPU hours: {'; '.join(sorted(sources))}. Measured on no GPU yet; data loading is not counted "
          f"(real runs are slower). Rate assumed: {REFERENCE_GPU.tflops:.0f} TFLOP/s.")
    return 0


def print_summary(summary: dict) -> None:
    from stopgrad.console import summary_table

    if summary:
        print(summary_table(summary))


def cmd_config(args: argparse.Namespace) -> int:
    from stopgrad.config_doc import render

    preset, overrides = args.preset, list(args.overrides)
    if preset and "=" in preset:
        overrides.insert(0, preset)
        preset = None
    print(render(resolve(preset or "default", overrides), show_help=not args.plain), end="")
    return 0
