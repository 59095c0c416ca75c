"""The Gamma exercise (Q1.4) solved in closed form and with Pyro SVI, side by side.

Model: z ~ Exponential(1), x | z ~ Exponential(rate z); q_theta(z) = Gamma(shape 2, rate theta).
Answer: theta* = x + 1, where KL(q || p(z | x)) = 0 and ELBO = log p(x) = -2 log(x + 1).

Examples:
    python examples/gamma_vi.py                          # symbolic answer + table for x = 0, 1, 3, 10
    python examples/gamma_vi.py --x 3 --plot runs/gamma_vi
    python examples/gamma_vi.py --x 0.5 2 7              # table for your own x values
    python examples/gamma_vi.py --data 1.2,0.4,2.0 --learn-shape --json

JSON (--json prints exactly one object on stdout):
  * one problem (a single --x value, or --data): a flat object with, among others,
    theta_analytic, theta_svi, alpha_analytic, alpha, elbo (Monte-Carlo, at the fitted q),
    elbo_stderr, elbo_analytic, log_evidence, kl, theta_rel_error, elbo_gap, seconds, and
    "x" (a number) or "data" (a list); "plot" (a path) when --plot is given.
  * several x values (the default, or --x a b c): {"symbolic": {...}, "settings": {...},
    "fits": [one flat object as above per x, in order]}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from vae.cli.options import add_device_option, add_seed_option, add_threads_option
from vae.cli.options import positive_int as _positive_int, run_main, set_threads

DEFAULT_XS = (0.0, 1.0, 3.0, 10.0)
QUICK_STEPS = 500
# SVI starts at theta = 0.5 and ClippedAdam moves log(theta) by about lr per step, so the default
# schedule reaches theta ~ 2e4 at most: x (or the sum of the data) above this cannot be fitted.
MAX_SUM_X = 1e4
MAX_LR = 1.0


def _parse_data(text: str) -> list[float]:
    """'1.2,0.4,2' -> [1.2, 0.4, 2.0]; an ArgumentTypeError with the bad item otherwise."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(
            f"--data needs comma-separated numbers in [0, inf), e.g. 1.2,0.4,2.0; got {text!r}")
    out = []
    for t in items:
        try:
            out.append(float(t))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--data item {t!r} is not a number (expected comma-separated numbers in "
                "[0, inf), e.g. 1.2,0.4,2.0)") from None
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=(
            "Variational inference for z ~ Exponential(1), x|z ~ Exponential(rate z) with "
            "q(z) = Gamma(alpha, rate theta): the closed-form optimum (theta* = x + 1, "
            "ELBO* = log p(x) = -2 log(x + 1)) against Pyro SVI. Default: the symbolic answer "
            "and a table for x = 0, 1, 3, 10."),
        epilog=(
            "examples:\n"
            "  %(prog)s\n"
            "  %(prog)s --x 3 --plot runs/gamma_vi\n"
            "  %(prog)s --data 1.2,0.4,2.0 --learn-shape --json\n"
            "With n observations the exact posterior is Gamma(1 + n, 1 + sum x); the default fixed "
            "shape is 1 + n (= 2 for one x, the exercise), so the family contains it."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--x", type=float, nargs="+", metavar="X",
                     help=f"one or more single observations 0 <= x <= {MAX_SUM_X:g}, each its own problem "
                          "(default: 0 1 3 10)")
    src.add_argument("--data", type=_parse_data, metavar="X1,X2,...",
                     help=f"n i.i.d. observations of one problem, comma-separated, each >= 0, sum <= {MAX_SUM_X:g}")
    p.add_argument("--shape", type=float, default=None, metavar="ALPHA",
                   help="fixed Gamma shape of q (default: 1 + n, i.e. 2 for one x); with "
                        "--learn-shape, the starting value (default start: 1, the prior's)")
    p.add_argument("--learn-shape", action="store_true",
                   help="learn the shape alpha too (optimum: alpha = 1 + n, theta = 1 + sum x)")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="SVI steps per fit (default: 500, or 2000 with --learn-shape)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_STEPS} steps, also with --learn-shape: a smoke run of about a second")
    p.add_argument("--particles", type=_positive_int, default=256,
                   help="vectorised Monte-Carlo particles per SVI step (default: 256)")
    p.add_argument("--lr", type=float, default=0.1,
                   help="initial ClippedAdam learning rate in (1e-3, 1], decayed geometrically to 1e-3 "
                        "(default: 0.1)")
    p.add_argument("--loss", choices=("meanfield", "trace"), default="meanfield",
                   help="meanfield: TraceMeanField_ELBO with the analytic KL(Gamma||Exponential)"
                        " (default); trace: Trace_ELBO")
    r = p.add_argument_group("run (the options every command shares)")
    add_device_option(r, help="auto or cpu (default: auto, which is the CPU here: the model has two scalar "
                              "parameters, a GPU would only add transfers)")
    add_seed_option(r)
    add_threads_option(r)
    r.add_argument("--plot", "--out", dest="plot", type=Path, metavar="DIR", default=None,
                   help="save PNGs into DIR: theta trajectory, ELBO curve, KL, q vs posterior")
    r.add_argument("--json", action="store_true",
                   help="print one JSON object instead of the text report (see the module doc)")
    r.add_argument("--no-progress", action="store_true", help="no tqdm progress bar (none is shown with --json, "
                                                              "or when stderr is not a terminal)")
    return p


def _tag(x=None, data=None, learn_shape=False) -> str:
    if data is not None:
        tag = f"data_n{len(data)}"
    else:
        tag = f"x{x:g}".replace("-", "m")
    return tag + ("_learned" if learn_shape else "")


def _fmt_row(x_label: str, r) -> str:
    return (f"{x_label:>7} {r.theta_analytic:9.4f} {r.theta:9.4f} {100 * r.theta_rel_error:7.3f}%"
            f" {r.elbo:10.5f} ±{r.elbo_stderr:.0e} {r.log_evidence:10.5f}"
            f" {abs(r.elbo_gap):9.2e} {r.kl:9.2e} {r.seconds:6.2f}s")


HEADER = (f"{'x':>7} {'θ*':>9} {'θ_svi':>9} {'rel.err':>8} {'ELBO (MC ± se)':>17}"
          f" {'log p(x)':>10} {'|gap|':>9} {'KL end':>9} {'time':>7}")


def derivation_lines(n: int | None, alpha: float | None = None, learn_shape: bool = False) -> list[str]:
    """The derivation printed above the fits, for the problem actually solved.

    ``n=None``: each x its own problem (one observation, the exercise); else one problem with
    ``n`` observations (``--data``). ``alpha``: the fixed shape of q (None: 1 + n, which makes the
    family contain the posterior); ``learn_shape``: alpha is fitted too (``alpha`` is its start).
    The optimum is :func:`vi.analytic.optimal_params`: theta* = alpha (1 + Σx) / (1 + n) for a
    fixed alpha, and the exact posterior Gamma(1 + n, 1 + Σx) with a learned one.
    """
    if n is None:  # the exercise: one observation x
        fixed = None if learn_shape else (2.0 if alpha is None else float(alpha))
        model = "Gamma exercise (Q1.4): z ~ Exponential(1), x | z ~ Exponential(rate z), "
        if fixed == 2.0:
            return [model + "q_θ = Gamma(2, rate θ)",
                    "  −ELBO(θ) = 2 log θ − 2 + 2(x + 1)/θ + const  ⇒  θ* = x + 1",
                    "  exact posterior p(z | x) = Gamma(2, x + 1) = q_θ*, so KL(q_θ* ‖ p(z|x)) = 0 and",
                    "  ELBO(θ*) = log p(x) = log ∫ z e^{−z(x+1)} dz = −2 log(x + 1)"]
        if fixed is None:
            return [model + "q = Gamma(α, rate θ), α and θ learned",
                    "  ELBO(α, θ) = (2 − α) ψ(α) − 2 log θ − α (x + 1)/θ + α + log Γ(α)",
                    "  maximised by the exact posterior p(z | x) = Gamma(2, x + 1): α* = 2, θ* = x + 1,",
                    "  KL(q* ‖ p(z|x)) = 0 and ELBO* = log p(x) = −2 log(x + 1)"]
        return [model + f"q_θ = Gamma(α, rate θ), shape fixed at α = {fixed:g}",
                "  −ELBO(θ) = 2 log θ + α (x + 1)/θ + const  ⇒  θ* = α (x + 1)/2 "
                f"= {fixed / 2:g} (x + 1)",
                f"  the exact posterior p(z | x) = Gamma(2, x + 1) has shape 2 ≠ α = {fixed:g}: it is not in the "
                "family, so KL(q_θ* ‖ p(z|x)) > 0 and",
                "  ELBO(θ*) < log p(x) = −2 log(x + 1)  (α = 2, the exercise's family, gives θ* = x + 1 and KL = 0)"]
    fixed = None if learn_shape else (float(n + 1) if alpha is None else float(alpha))
    lines = [f"Gamma exercise (Q1.4) for the n = {n} i.i.d. observation{'s' if n != 1 else ''} given "
             "(the exercise has one):",
             "  z ~ Exponential(1), x_i | z ~ Exponential(rate z); "
             + ("q = Gamma(α, rate θ), α and θ learned" if fixed is None
                else "q_θ = Gamma(α, rate θ), shape fixed at α = "
                     + ("1 + n = " if fixed == n + 1 else "") + f"{fixed:g}"),
             "  ELBO(α, θ) = n E_q[log z] − (1 + Σx) E_q[z] + H[q]",
             "             = (n + 1 − α) ψ(α) − (n + 1) log θ − α (1 + Σx)/θ + α + log Γ(α)"]
    if fixed is None:
        lines += ["  maximised by the exact posterior p(z | x) = Gamma(1 + n, 1 + Σx): α* = 1 + n, θ* = 1 + Σx,",
                  "  KL(q* ‖ p(z | x)) = 0 and ELBO* = log p(x) = log Γ(n + 1) − (n + 1) log(1 + Σx)"]
    elif fixed == n + 1:
        lines += ["  −ELBO(θ) = (n + 1) log θ + (n + 1)(1 + Σx)/θ + const  ⇒  θ* = 1 + Σx",
                  "  exact posterior p(z | x) = Gamma(1 + n, 1 + Σx) = q_θ*, so KL(q_θ* ‖ p(z | x)) = 0 and",
                  "  ELBO(θ*) = log p(x) = log Γ(n + 1) − (n + 1) log(1 + Σx)"]
    else:
        lines += ["  −ELBO(θ) = (n + 1) log θ + α (1 + Σx)/θ + const  ⇒  θ* = α (1 + Σx)/(n + 1)",
                  f"  the exact posterior p(z | x) = Gamma(1 + n, 1 + Σx) has shape {n + 1} ≠ α = {fixed:g}: it is "
                  "not in the family, so KL(q_θ* ‖ p(z | x)) > 0 and",
                  "  ELBO(θ*) < log p(x) = log Γ(n + 1) − (n + 1) log(1 + Σx)"]
    lines.append("  (for one observation, n = 1 and α = 2, this is the exercise: θ* = x + 1, ELBO* = −2 log(x + 1))")
    return lines


def run_cli(argv: list[str] | None = None) -> dict:
    """Parse, fit and report (text, or one JSON object with ``--json``); returns that JSON object.
    Errors propagate (:func:`main` handles them)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")

    # Validate everything before importing torch/pyro (fast, clear errors, no traceback).
    from vi import analytic

    try:
        if args.data is not None:
            problems = [("data", analytic.check_data(args.data, name="data").tolist())]
        else:
            xs = args.x if args.x is not None else list(DEFAULT_XS)
            problems = [("x", float(analytic.check_data(v, name="x")[0])) for v in xs]
        for kind, value in problems:
            total = float(sum(value)) if kind == "data" else value
            if total > MAX_SUM_X:
                what = f"sum of --data = {total:g}" if kind == "data" else f"x = {total:g}"
                raise ValueError(f"{what} is too large: theta* = 1 + {'sum x' if kind == 'data' else 'x'} "
                                 f"must stay reachable by SVI, which starts at theta = 0.5; use values <= {MAX_SUM_X:g}")
        if args.shape is not None:
            analytic.check_positive(args.shape, "--shape")
            if args.shape > MAX_SUM_X:
                raise ValueError(f"--shape = {args.shape:g} is too large; use a value <= {MAX_SUM_X:g}")
        analytic.check_positive(args.lr, "--lr")
        if not 1e-3 < args.lr <= MAX_LR:
            raise ValueError(f"--lr must be in (1e-3, {MAX_LR:g}] (above the final learning rate 1e-3; larger steps "
                             f"of log theta overflow); got {args.lr}")
        if args.device not in ("auto", "cpu"):
            raise ValueError(f"--device {args.device}: this command runs on the CPU; use cpu or auto")
    except ValueError as e:
        parser.error(str(e))
    steps = args.steps or (QUICK_STEPS if args.quick else (2000 if args.learn_shape else 500))

    if args.plot is not None:  # an unwritable --plot fails now, not after the fits (run_main: `error:`, exit 2)
        args.plot.mkdir(parents=True, exist_ok=True)

    set_threads(args.threads)
    from vi.svi import fit

    results = []
    t_all = time.perf_counter()
    for kind, value in problems:
        r = fit(value, alpha=args.shape, learn_shape=args.learn_shape, steps=steps,
                num_particles=args.particles, lr=args.lr, loss=args.loss, seed=args.seed,
                progress=sys.stderr.isatty() and not args.json and not args.no_progress)
        d = r.to_dict()
        bad = [k for k, v in d.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise ValueError(f"SVI gave non-finite {', '.join(bad)} for {kind} = {value}: try a smaller --lr "
                             "or more --steps")
        d[kind] = value
        if args.plot is not None:
            from vi.plots import plot_fit

            tag = _tag(value if kind == "x" else None, value if kind == "data" else None,
                       args.learn_shape)
            d["plot"] = str(plot_fit(r, value, args.plot / f"gamma_vi_{tag}.png"))
        results.append((kind, value, r, d))
    wall = time.perf_counter() - t_all

    settings = dict(loss=args.loss, steps=steps, particles=args.particles, lr=args.lr,
                    lr_final=1e-3, seed=args.seed, learn_shape=args.learn_shape,
                    shape=args.shape)
    symbolic = {
        "posterior": "Gamma(2, x + 1)",
        "theta_star": "x + 1",
        "elbo_star": "log p(x) = -2 log(x + 1)",
        "kl_star": 0,
        "neg_elbo": "2 log(theta) - 2 + 2 (x + 1) / theta",
    }
    if args.shape is not None and not args.learn_shape and args.shape != 2:  # the family misses the posterior
        symbolic.update(theta_star=f"{args.shape:g} (x + 1) / 2", kl_star="> 0 (shape of q != 2)",
                        elbo_star="< log p(x) = -2 log(x + 1)",
                        neg_elbo=f"2 log(theta) + {args.shape:g} (x + 1) / theta + const")
    summary_png = None
    if args.plot is not None and len(results) > 1 and all(k == "x" for k, *_ in results):
        from vi.plots import plot_theta_vs_x

        summary_png = str(plot_theta_vs_x([(v, r) for _, v, r, _ in results],
                                          args.plot / "gamma_vi_theta_vs_x.png"))

    if len(results) == 1:
        out = results[0][3]
    else:
        out = {"symbolic": symbolic, "settings": settings,
               "fits": [d for *_, d in results], "wall_seconds": wall}
        if summary_png:
            out["summary_plot"] = summary_png
    if args.json:
        print(json.dumps(out, indent=2))
        return out

    loss_name = ("TraceMeanField_ELBO (analytic KL(Gamma‖Exponential))" if args.loss == "meanfield"
                 else "Trace_ELBO")
    if args.learn_shape:
        shape_txt = "learned (start " + ("1, the prior's" if args.shape is None
                                         else f"{args.shape:g}") + ")"
    else:
        n_obs = results[0][2].n if results[0][0] == "data" else None
        shape_txt = "fixed, " + (f"{args.shape:g}" if args.shape is not None else "1 + n (= 2 for one x)"
                                 if n_obs is None else f"1 + n = {n_obs + 1}")
    for line in derivation_lines(None if results[0][0] == "x" else results[0][2].n, args.shape, args.learn_shape):
        print(line)
    print()
    print(f"SVI: {loss_name}, {args.particles} particles/step,")
    print(f"     ClippedAdam lr {args.lr:g} → 1e-3 over {steps} steps, seed {args.seed}; "
          f"shape of q {shape_txt};")
    print("     final ELBO: Monte Carlo over 20000 samples of log p(x,z) − log q(z), z ~ q")
    print()
    kind0 = results[0][0]
    if kind0 == "x":
        print(HEADER)
        for _, v, r, _ in results:
            print(_fmt_row(f"{v:g}", r))
        if args.learn_shape or args.shape is not None:
            print()
            for _, v, r, _ in results:
                print(f"  x = {v:g}: α = {r.alpha:.4f} (α* = {r.alpha_analytic:g})")
    else:
        _, data, r, _ = results[0]
        n, s = r.n, r.sum_x
        print(f"data: n = {n}, Σx = {s:g}  →  posterior Gamma(1 + n, 1 + Σx) = "
              f"Gamma({n + 1}, {1 + s:g});  log p(x) = log Γ(n + 1) − (n + 1) log(1 + Σx)"
              f" = {r.log_evidence:.5f}")
        print(f"  α:  optimum {r.alpha_analytic:.4f}   SVI {r.alpha:.4f}   "
              f"({'learned' if r.learn_shape else 'fixed'}; rel. err {100 * r.alpha_rel_error:.3f}%)")
        print(f"  θ:  optimum {r.theta_analytic:.4f}   SVI {r.theta:.4f}   "
              f"(rel. err {100 * r.theta_rel_error:.3f}%)")
        print(f"  ELBO {r.elbo:.5f} ± {r.elbo_stderr:.1e} (MC), {r.elbo_analytic:.5f} (closed form)"
              f" vs log p(x) {r.log_evidence:.5f}; KL at end {r.kl:.2e}; SVI {r.seconds:.2f}s")
    for *_, d in results:
        if "plot" in d:
            print(f"plot: {d['plot']}")
    if summary_png:
        print(f"plot: {summary_png}")
    print(f"total wall time {wall:.1f}s")
    return out


def main(argv: list[str] | None = None) -> int:
    """The command: :func:`run_cli` with the commands' one error handling (an ``error:`` line and
    exit 2; Ctrl-C 130); returns the exit status."""
    return run_main(run_cli, argv)


if __name__ == "__main__":
    raise SystemExit(main())
