"""``stopgrad`` command line: train, resume, eval, plot, report, reproduce, table, methods, presets.

Every error a user can cause ends as one ``stopgrad: error: ...`` line naming the file or key and
the fix, with exit status 2 (130 on Ctrl-C); ``--debug`` (or ``STOPGRAD_DEBUG=1``) shows the
traceback instead. Warnings of stopgrad's own (a checksum accepted with ``data.verify=false``,
a resume from an older checkpoint, a collapse alarm) are one ``stopgrad: warning: ...`` line.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
import warnings

from stopgrad.commands import (
    cmd_config,
    cmd_eval,
    cmd_export,
    cmd_methods,
    cmd_plot,
    cmd_presets,
    cmd_report,
    cmd_reproduce,
    cmd_resume,
    cmd_sweep,
    cmd_table,
    cmd_train,
)
from stopgrad.errors import StopgradError, describe


class Parser(argparse.ArgumentParser):
    """argparse, with a hint when someone writes ``--epochs 1`` for ``train.epochs=1``."""

    argv: list[str] = []

    def error(self, message: str) -> None:  # type: ignore[override]
        from stopgrad.config import SECTIONS
        from stopgrad.console import flag_hint

        hint = flag_hint(Parser.argv, SECTIONS) if "unrecognized arguments" in message else ""
        self.print_usage(sys.stderr)
        self.exit(2, f"stopgrad: error: {message}{hint}\n")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="stopgrad", description="Non-contrastive self-supervised learning, "
               "with collapse diagnostics and paper reproductions.")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error (or STOPGRAD_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    from stopgrad.config_doc import sections_help

    t = sub.add_parser("train", help="train a method: stopgrad train [PRESET] [key=value ...]",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="config sections (override any key as section.key=value):\n" + sections_help()
                       + "\n\nEvery key with its type, default and help: stopgrad config [PRESET] [key=value ...]")
    t.add_argument("preset", nargs="?", help="a preset under configs/ (see `stopgrad presets`)")
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=5")
    t.set_defaults(func=cmd_train)
    r = sub.add_parser("resume", help="continue a run from its newest whole checkpoint")
    r.add_argument("run_dir")
    r.set_defaults(func=cmd_resume)
    e = sub.add_parser("eval", help="evaluate a run's frozen backbone: knn or linear")
    e.add_argument("kind", choices=["knn", "linear"])
    e.add_argument("run_dir")
    e.add_argument("--epochs", type=int, default=None,
                   help="use the fixed-epoch SGD probe with this many epochs instead of the validated L-BFGS protocol")
    e.add_argument("--random-init", action="store_true", help="evaluate the randomly initialised backbone instead")
    e.add_argument("--pixels", action="store_true", help="evaluate the raw pixels instead (the baseline)")
    e.add_argument("--per-class", action="store_true",
                   help="knn: also each class's top-1 and the confusion matrix (printed, and saved with the result)")
    e.add_argument("--out", default=None, help="JSON file for the result (default: the run's summary.json)")
    e.set_defaults(func=cmd_eval)
    pl = sub.add_parser("plot", help="draw loss, kNN and diagnostics of one or more runs (PNGs)")
    pl.add_argument("run_dirs", nargs="+")
    pl.add_argument("--out", default=None, help="folder for the PNGs (default: RUN_DIR/plots for one run, "
                    "<their common folder>/plots-<n>runs-<hash> for several)")
    pl.set_defaults(func=cmd_plot)
    rp = sub.add_parser("report", help="one self-contained HTML page comparing runs")
    rp.add_argument("run_dirs", nargs="+")
    rp.add_argument("--out", default=None, help="the HTML file (default: RUN_DIR/report.html for one run, "
                    "<their common folder>/report.html for several)")
    rp.set_defaults(func=cmd_report)
    rr = sub.add_parser("reproduce", help="reproduce a paper's claims: stopgrad reproduce list | NAME --out DIR")
    rr.add_argument("name", help="a claim set, or `list`")
    rr.add_argument("--out", default=None, help="output folder (default runs/reproduce/NAME)")
    rr.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the claim set's)")
    rr.add_argument("--quick", action="store_true", help="the about-a-minute form used by the tests")
    rr.add_argument("--views", default=None, help="the view preset of a claim set made of image training runs "
                    "(default: the set's own, which `stopgrad reproduce list` shows)")
    rr.add_argument("--backbone", default=None, help="the ConvNet of a Fashion-MNIST claim set: plain or feature-bn "
                    "(default: the set's own, which `stopgrad reproduce list` shows)")
    rr.set_defaults(func=cmd_reproduce)
    sw = sub.add_parser("sweep", help="a grid of runs: stopgrad sweep PRESET key=a,b,c train.seed=0,1,2",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="Each key=v1,v2,... is a grid axis (commas inside [...] do not split); train.seed=0,1,2 "
                        "gives the seeds.\nFinished cells are skipped and killed ones resumed when the same command "
                        "runs again.")
    sw.add_argument("preset", nargs="?", help="a preset under configs/ (default: default)")
    sw.add_argument("overrides", nargs="*", help="key=value or key=v1,v2,... (a grid axis)")
    sw.add_argument("--out", default=None, help="grid folder (default runs/sweep-<preset>)")
    sw.add_argument("--jobs", type=int, default=2, help="local launcher: runs at a time")
    sw.add_argument("--threads", type=int, default=1, help="intra-op threads per run")
    sw.add_argument("--launcher", choices=["local", "slurm", "slurm-local"], default="local",
                    help="local processes, SLURM jobs through submitit, or submitit's local executor")
    sw.add_argument("--partition", default=None, help="SLURM partition")
    sw.add_argument("--time", type=int, default=60, help="SLURM time limit per job, minutes")
    sw.add_argument("--gpus", type=int, default=0, help="SLURM GPUs per job")
    sw.add_argument("--cpus", type=int, default=2, help="SLURM CPUs per job")
    sw.add_argument("--array", action="store_true", help="submit the cells as one SLURM job array")
    sw.set_defaults(func=cmd_sweep)
    ex = sub.add_parser("export", help="write a run's backbone as safetensors + JSON (architecture, preprocessing)")
    ex.add_argument("run_dir")
    ex.add_argument("--out", default=None, help="the .safetensors file (default RUN_DIR/backbone.safetensors)")
    ex.set_defaults(func=cmd_export)
    tb = sub.add_parser("table", help="mean ± std table of runs ROOT/<variant>/seed<k> or ROOT/<variant>-seed<k>")
    tb.add_argument("root")
    tb.add_argument("--out", default=None, help="also write table.md, table.json and the bar figure table.png here")
    tb.set_defaults(func=cmd_table)
    c = sub.add_parser("config", help="print the resolved config, each key with its type, default and help")
    c.add_argument("preset", nargs="?", help="a preset under configs/ (default: default)")
    c.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=5")
    c.add_argument("--plain", action="store_true", help="the YAML alone, without the comments")
    c.set_defaults(func=cmd_config)
    sub.add_parser("methods", help="list registered methods").set_defaults(func=cmd_methods)
    ps = sub.add_parser("presets", help="list config presets, each with its source; --cost adds GPU hours")
    ps.add_argument("prefix", nargs="?", default="", help="only presets whose name starts with this (e.g. cifar10/)")
    ps.add_argument("--cost", action="store_true",
                    help="FLOPs per step and GPU hours per epoch and schedule (an estimate from FLOPs unless measured)")
    ps.set_defaults(func=cmd_presets)
    return p


ONE_LINE_WARNINGS = ("ChecksumWarning", "ResumeWarning", "CollapseWarning")


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """stopgrad's own warnings as one line; others as Python prints them."""
    stream = file or sys.stderr
    if category.__name__ in ONE_LINE_WARNINGS:
        stream.write(f"stopgrad: warning: {message}\n")
    else:
        stream.write(warnings.formatwarning(message, category, filename, lineno, line))


def out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, MemoryError) or "out of memory" in text.lower() or "can't allocate memory" in text


def main(argv: list[str] | None = None) -> int:
    Parser.argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    debug = args.debug or os.environ.get("STOPGRAD_DEBUG", "") not in ("", "0")
    previous, warnings.showwarning = warnings.showwarning, show_warning
    try:
        return run_command(args, debug)
    finally:
        warnings.showwarning = previous


def run_command(args: argparse.Namespace, debug: bool) -> int:
    """Run the chosen command; every error ends here as one line (the traceback with ``debug``)."""
    try:
        return args.func(args)
    except KeyboardInterrupt as e:
        if debug:
            traceback.print_exc()
        run_dir = getattr(e, "run_dir", None)
        by = getattr(e, "signal_name", "SIGINT")
        if run_dir is not None:
            what = "interrupted" if by == "SIGINT" else f"stopped by {by}"
            print(f"stopgrad: {what} at step {e.step}; a checkpoint of that step was written to {run_dir} "
                  f"(resume with `stopgrad resume {run_dir}`)", file=sys.stderr)
        else:
            print("stopgrad: interrupted", file=sys.stderr)
        return 128 + getattr(signal, by, signal.SIGINT)  # the shell's code for that signal: 130, 143
    except (StopgradError, OSError) as e:
        if debug:
            traceback.print_exc()
        print(f"stopgrad: error: {describe(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a bug or an exhausted machine: one line, the traceback on request
        if debug:
            traceback.print_exc()
        if out_of_memory(e):
            print(f"stopgrad: error: out of memory ({str(e).splitlines()[0][:200]}); lower data.batch_size, "
                  "eval.batch_size or model.width", file=sys.stderr)
        else:
            first = str(e).splitlines()[0][:300] if str(e) else ""
            print(f"stopgrad: error: internal error ({type(e).__name__}: {first}); this is a bug in stopgrad: "
                  "rerun with --debug for the traceback and report it", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
