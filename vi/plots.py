"""Figures for the Gamma exercise (matplotlib imported lazily, Agg backend when headless).

* :func:`plot_fit` -- one PNG per fit, four panels: parameter trajectory with the optimum marked,
  the ELBO curve approaching log p(x), KL(q_t || posterior) on a log scale, and the fitted q
  against the exact posterior density.
* :func:`plot_theta_vs_x` -- fitted theta for several x against the line theta* = x + 1.

Example:
    >>> from vi.svi import fit                                   # doctest: +SKIP
    >>> r = fit(3.0, steps=300)                                  # doctest: +SKIP
    >>> plot_fit(r, 3.0, "runs/gamma_vi/gamma_vi_x3.png")        # doctest: +SKIP
    PosixPath('runs/gamma_vi/gamma_vi_x3.png')
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from . import analytic

__all__ = ["plot_fit", "plot_theta_vs_x"]


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg"):
        try:
            import os

            if not os.environ.get("DISPLAY"):
                matplotlib.use("Agg")
        except Exception:  # pragma: no cover - backend already fixed
            pass
    import matplotlib.pyplot as plt

    return plt


def _centred_mean(y: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred moving mean over full windows only: (step indices from 1, means)."""
    y = np.asarray(y, dtype=float)
    if len(y) < window:
        return np.arange(1, len(y) + 1), y
    m = np.convolve(y, np.ones(window) / window, mode="valid")
    return np.arange(1, len(m) + 1) + (window - 1) / 2, m


def plot_fit(result, x, path: str | Path) -> Path:
    """Save the four-panel figure of one :class:`vi.svi.FitResult` to ``path`` (PNG).

    ``x`` is the observation(s) the result was fitted to (for the closed forms).
    """
    plt = _plt()
    xs = analytic.check_data(x)
    r = result
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = np.arange(1, r.steps + 1)
    log_ev = r.log_evidence
    title_x = (f"x = {xs[0]:g}" if xs.size == 1
               else f"n = {xs.size} observations, Σx = {xs.sum():g}")

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (ax_p, ax_e), (ax_k, ax_d) = axes

    # (a) parameter trajectory
    ax_p.plot(steps, r.theta_trace, color="C0", lw=1.8, label="θ (SVI)")
    ax_p.axhline(r.theta_analytic, color="C0", ls="--", lw=1.2,
                 label=f"θ* = {r.theta_analytic:.4g}")
    ax_p.axhspan(0.99 * r.theta_analytic, 1.01 * r.theta_analytic, color="C0", alpha=0.12,
                 label="θ* ± 1%")
    if r.learn_shape:
        ax_p.plot(steps, r.alpha_trace, color="C3", lw=1.8, label="α (SVI)")
        ax_p.axhline(r.alpha_analytic, color="C3", ls="--", lw=1.2,
                     label=f"α* = {r.alpha_analytic:.4g}")
    ax_p.set_xscale("log")
    ax_p.set_xlabel("SVI step (log scale)")
    ax_p.set_ylabel("parameter value")
    ax_p.set_title(f"(a) q parameters: final θ = {r.theta:.4f} "
                   f"({100 * r.theta_rel_error:.2f}% from θ*)")
    ax_p.legend(loc="best", fontsize=9)
    ax_p.grid(alpha=0.3)

    # (b) ELBO curve
    if r.learn_shape:
        cf = np.array([analytic.elbo(t, xs, a) for t, a in zip(r.theta_trace, r.alpha_trace)])
    else:
        cf = np.asarray(analytic.elbo(r.theta_trace, xs, r.alpha))
    ax_e.plot(steps, r.elbo_trace, color="0.6", lw=0.6, alpha=0.7,
              label=f"SVI estimate per step ({r.num_particles} particles)")
    ax_e.plot(*_centred_mean(r.elbo_trace, 25), color="C1", lw=1.5,
              label="SVI estimate, centred 25-step mean")
    ax_e.plot(steps, cf, color="C0", lw=1.5, label="closed-form ELBO(q_t)")
    ax_e.axhline(log_ev, color="k", ls="--", lw=1.2, label=f"log p(x) = {log_ev:.4f}")
    span = max(0.25, 4 * float(np.ptp(r.elbo_trace[len(steps) // 2:])))
    lo = min(float(np.percentile(cf, 2)), log_ev - span)
    ax_e.set_ylim(max(lo, log_ev - 4.0), log_ev + 0.3 * span)
    ax_e.set_xscale("log")
    ax_e.set_xlabel("SVI step (log scale)")
    ax_e.set_ylabel("ELBO (nats)")
    ax_e.set_title(f"(b) ELBO → log p(x): final {r.elbo:.4f} vs {log_ev:.4f}")
    ax_e.legend(loc="lower right", fontsize=9)
    ax_e.grid(alpha=0.3)

    # (c) KL to the posterior along the trajectory
    kl = log_ev - cf
    kl_floor = 1e-12
    ax_k.semilogy(steps, np.maximum(kl, kl_floor), color="C2", lw=1.5,
                  label="KL(q_t ‖ p(z|x)) = log p(x) − ELBO(q_t)")
    ax_k.axhline(0.02, color="k", ls=":", lw=1.0, label="0.02 nats (target gap)")
    ax_k.set_xlabel("SVI step")
    ax_k.set_ylabel("KL (nats, log scale)")
    ax_k.set_title(f"(c) KL to the exact posterior: {r.kl:.2e} at the end")
    ax_k.legend(loc="upper right", fontsize=9)
    ax_k.grid(alpha=0.3)

    # (d) densities
    post = analytic.posterior(xs)
    z = np.linspace(1e-6, float(post.ppf(0.999)) * 1.15, 500)
    q = analytic.q_distribution(r.theta, r.alpha)
    q0 = analytic.q_distribution(r.theta_trace[0], r.alpha_trace[0])
    a_p, b_p = analytic.posterior_params(xs)
    ax_d.plot(z, post.pdf(z), color="k", lw=3, alpha=0.35,
              label=f"exact posterior Gamma({a_p:g}, {b_p:g})")
    ax_d.plot(z, q.pdf(z), color="C0", lw=1.6, ls="--",
              label=f"fitted q = Gamma({r.alpha:.3f}, {r.theta:.3f})")
    ax_d.plot(z, q0.pdf(z), color="C7", lw=1.0, ls=":", label="q at the start (after step 1)")
    ax_d.plot(z, np.exp(-z), color="C4", lw=1.0, alpha=0.7, label="prior Exponential(1)")
    ax_d.set_ylim(0, 1.25 * float(max(post.pdf(z).max(), q.pdf(z).max())))
    ax_d.set_xlabel("z")
    ax_d.set_ylabel("density")
    ax_d.set_title("(d) fitted q against the exact posterior")
    ax_d.legend(loc="upper right", fontsize=9)
    ax_d.grid(alpha=0.3)

    est = "TraceMeanField_ELBO" if r.loss == "meanfield" else "Trace_ELBO"
    shape = "shape learned" if r.learn_shape else f"shape fixed at {r.alpha:g}"
    fig.suptitle(f"Gamma VI, {title_x} ({shape}): Pyro SVI with {est}, {r.steps} steps, "
                 f"seed {r.seed}",
                 fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_theta_vs_x(results: Sequence[tuple[float, object]], path: str | Path) -> Path:
    """Fitted θ for several single observations x against θ* = x + 1 (and the ELBO gaps).

    ``results`` is a sequence of ``(x, FitResult)``.
    """
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    xs = np.array([float(x) for x, _ in results])
    th = np.array([r.theta for _, r in results])
    th_star = np.array([r.theta_analytic for _, r in results])
    gaps = np.array([abs(r.elbo_gap) for _, r in results])
    grid = np.linspace(0, max(xs.max(), 1.0) * 1.05, 200)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax1.plot(grid, grid + 1, color="k", lw=1.2, label="θ* = x + 1")
    ax1.plot(xs, th, "o", color="C0", ms=7, label="θ from SVI")
    ax1.set_xlabel("x")
    ax1.set_ylabel("θ")
    ax1.set_title(f"fitted rate vs θ* (worst rel. err {100 * np.max(np.abs(th / th_star - 1)):.2f}%)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.semilogy(xs, np.maximum(gaps, 1e-12), "o-", color="C2", label="|ELBO − log p(x)|")
    ax2.axhline(0.02, color="k", ls=":", label="0.02 nats target")
    ax2.set_xlabel("x")
    ax2.set_ylabel("nats (log scale)")
    ax2.set_title("final ELBO gap (Monte Carlo ELBO)")
    ax2.legend()
    ax2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
