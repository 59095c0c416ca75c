"""Small defects a new user hit in the commands' help, printed output, figures and file names;
each test asserts the fixed behaviour (tiny runs: a few dozen images, one epoch, one thread)."""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


def _options_of(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def _recording(monkeypatch, module, name: str) -> list[dict]:
    """Wrap ``module.name`` so that each call's arguments are recorded (and the real function runs)."""
    real, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append({"args": args, **kwargs})
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


# ------------------------------------------------------------------ 1-3: the autoencoder command
def test_autoencoder_help_documents_only_real_options():
    from vae.cli import autoencoder

    parser = autoencoder.build_parser()
    text = parser.format_help()
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    assert mentioned <= _options_of(parser), mentioned - _options_of(parser)
    assert "--noise gaussian" not in text and "original texts" not in text
    denoise = text[text.index("  denoise "):text.index("  denoise_sp")]
    assert "Gaussian noise of std --noise-level" in denoise


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """One tiny run of the plain autoencoder: (summary, stdout, the image-grid calls)."""
    import vae.plots
    from vae.cli import autoencoder

    out = tmp_path_factory.mktemp("plain")
    with pytest.MonkeyPatch.context() as mp:
        grids = _recording(mp, vae.plots, "save_image_grid")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            summary = autoencoder.run_cli(["--task", "plain", "--epochs", "1", "--max-samples", "60", "--out",
                                           str(out), "--no-progress", "--device", "cpu", "--threads", "1"])
    return summary, buf.getvalue(), grids, out


def test_autoencoder_prints_the_plain_reference_once(plain_run):
    summary, stdout, _, _ = plain_run
    line, = [ln for ln in stdout.splitlines() if ln.strip().startswith("plain:")]
    assert line.count("reference") == 1 and "PCA-16" in line
    assert f"{summary['tasks']['plain']['baseline_psnr']:.2f} dB" in line
    assert "beat" not in line  # a reference, not a baseline to beat
    assert summary["tasks"]["plain"]["beats_baseline"] is None


def test_autoencoder_plain_grid_shows_the_pca_reference_row(plain_run):
    from vae.cli import autoencoder
    from vae.data.mnist import load_mnist

    summary, _, grids, out = plain_run
    call, = [c for c in grids if str(c["args"][1]).endswith("plain_grid.png")]
    rows, labels = call["args"][0], call["row_labels"]
    assert len(rows) == len(labels) == 3
    assert labels[0] == "clean" and labels[1].startswith("PCA-16") and labels[2].startswith("autoencoder")
    assert f"{summary['tasks']['plain']['baseline_psnr']:.1f} dB" in labels[1]
    train, test = load_mnist(split="train", max_samples=60, seed=0), load_mnist(split="test")
    shown = [int((test.factors[:, 0] == d).nonzero()[0][0]) for d in range(10)]
    pca = autoencoder.pca_reconstruction(train.images, test.images, 16)
    torch.testing.assert_close(rows[1], pca[shown])
    assert (out / "plain_grid.png").stat().st_size > 0


# ------------------------------------------------------------------ 4: the Gamma exercise with --data
def _gamma_text(capsys, *args: str) -> str:
    from vi import cli

    assert cli.main([*args, "--steps", "40", "--particles", "16", "--threads", "1", "--no-progress"]) == 0
    return capsys.readouterr().out


def _derivation(out: str) -> str:
    return out[:out.index("\nSVI:")]


def test_gamma_data_prints_the_derivation_for_n_observations(capsys):
    from vi import analytic

    data = [1.2, 0.4, 2.0]
    out = _gamma_text(capsys, "--data", ",".join(map(str, data)))
    head = _derivation(out)
    assert "n = 3" in head and "Gamma(1 + n, 1 + Σx)" in head and "θ* = 1 + Σx" in head
    assert "log Γ(n + 1) − (n + 1) log(1 + Σx)" in head
    assert "q_θ = Gamma(2, rate θ)" not in head and "θ* = x + 1\n" not in head + "\n"
    assert "shape fixed at α = 1 + n = 4" in head
    # the numbers below it are the n-observation optimum of vi.analytic
    alpha, theta = analytic.optimal_params(data)
    assert (alpha, theta) == (4.0, pytest.approx(4.6))
    assert f"optimum {theta:.4f}" in out and f"{analytic.log_evidence(data):.5f}" in out
    assert "shape of q fixed, 1 + n = 4" in out


def test_gamma_derivation_follows_the_shape_of_q(capsys):
    from vi import analytic

    learned = _derivation(_gamma_text(capsys, "--data", "1,2", "--learn-shape"))
    assert "α and θ learned" in learned and "α* = 1 + n, θ* = 1 + Σx" in learned
    fixed = _derivation(_gamma_text(capsys, "--data", "1,2", "--shape", "2"))
    assert "θ* = α (1 + Σx)/(n + 1)" in fixed and "KL(q_θ* ‖ p(z | x)) > 0" in fixed
    assert analytic.theta_star([1, 2], alpha=2) == pytest.approx(2 * 4 / 3)
    one_x = _derivation(_gamma_text(capsys, "--x", "3", "--shape", "3"))
    assert "θ* = α (x + 1)/2 = 1.5 (x + 1)" in one_x and "⇒  θ* = x + 1" not in one_x
    exercise = _derivation(_gamma_text(capsys, "--x", "3"))  # the exercise itself: unchanged
    assert "q_θ = Gamma(2, rate θ)" in exercise and "⇒  θ* = x + 1" in exercise and "−2 log(x + 1)" in exercise


# ------------------------------------------------------------------ 5-8: pgm (check_independence)
def _pgm(capsys, *args: str) -> tuple[int, str, str]:
    from pgm.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_pgm_free_mode_json_has_no_correct_without_an_answer_key(capsys):
    code, out, _ = _pgm(capsys, "--edges", "M->I, S->I, I->T, F->T, I->D, T->D", "F ⊥ D", "S ⊥ D | I",
                        "--blanket", "T", "--json")
    recs = json.loads(out)
    assert code == 1 and [r["kind"] for r in recs] == ["statement", "statement", "blanket"]
    assert [r["holds"] for r in recs[:2]] == [False, True]
    for r in recs:  # nothing to be correct or not about: no expected answer
        assert "correct" not in r and r.get("expected") is None
    code, out, _ = _pgm(capsys, "--json")  # the answer key: every record has an expected answer and a verdict on it
    key = json.loads(out)
    assert code == 0 and key and all(isinstance(r["correct"], bool) and "expected" in r for r in key)
    assert any(r["kind"] == "statement" and r["holds"] is False and r["correct"] is True for r in key)


def test_pgm_answer_key_verdicts_start_in_one_column(capsys, monkeypatch):
    import dataclasses

    import unicodedata

    import pgm.report

    def display_width(text: str) -> int:  # terminal columns: a combining mark takes none
        return sum(not unicodedata.combining(c) for c in text)

    def holds_columns(text: str) -> set[int]:
        rows = [ln for ln in text.splitlines() if " holds: " in ln]
        assert len(rows) == 14
        return {display_width(ln[:ln.index(" holds: ")]) for ln in rows}

    _, out, _ = _pgm(capsys)
    assert len(holds_columns(out)) == 1
    assert "  e') M ⊥ T | I             holds: yes (expected yes) ✓" in out
    assert "  3-mn') A ⊥ B | M, O, T    holds: yes (expected yes) ✓" in out
    assert "\nQ1.2 Markov network" in out  # not indented under the Bayesian network's line
    longer = tuple(dataclasses.replace(s, id="a-much-longer-label") if (s.exercise, s.id) == ("1.1", "a") else s
                   for s in pgm.report.STATEMENTS)
    monkeypatch.setattr(pgm.report, "STATEMENTS", longer)
    _, out, _ = _pgm(capsys)
    assert len(holds_columns(out)) == 1 and "a-much-longer-label) F ⊥ D holds:" in out
    assert pgm.report.display_width("A ⊥̸ B") == 5  # the stroke of ⊥̸ takes no column


def test_pgm_plot_names_readable_files_and_says_what_it_wrote(capsys, tmp_path):
    code, out, err = _pgm(capsys, "--edges", "M->I, S->I, I->T, F->T, I->D, T->D", "F ⊥ D", "M _|_ F | T",
                          "{M, S} ⊥̸ F | T", "--plot", str(tmp_path))
    names = ["network.png", "stmt1_F-indep-D.png", "stmt2_M-indep-F-given-T.png", "stmt3_M-S-dep-F-given-T.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    line, = [ln for ln in out.splitlines() if ln.startswith("--plot:")]
    assert line == f"--plot: wrote 4 PNGs to {tmp_path}: " + ", ".join(names)
    key_dir = tmp_path / "key"
    code, out, err = _pgm(capsys, "--plot", str(key_dir), "--json")
    json.loads(out)  # stdout stays one JSON document; the line goes to stderr
    assert code == 0 and "q1_2_3-bn-prime.png" in err and err.startswith(f"--plot: wrote 10 PNGs to {key_dir}: ")
    assert (key_dir / "q1_2_3-bn-prime.png").is_file()


# ------------------------------------------------------------------ 8: --resume and --plot say what they did
def test_train_vae_resume_names_the_checkpoint_and_epoch(tmp_path, capsys):
    from vae.cli import train

    out = tmp_path / "run"
    tiny = ["--dataset", "mnist", "--quick", "--max-samples", "60", "--batch-size", "30", "--iwae-samples", "0",
            "--no-progress", "--threads", "1", "--device", "cpu", "--out", str(out)]
    train.run_cli([*tiny, "--epochs", "1"])
    assert "--resume" not in capsys.readouterr().out
    train.run_cli([*tiny, "--epochs", "2", "--resume"])
    lines = capsys.readouterr().out.splitlines()
    assert f"--resume: continuing from {out / 'checkpoint.pt'}, which holds epoch 1: training epoch 2 of 2" in lines
    summary = train.run_cli([*tiny, "--epochs", "2", "--resume", "--json"])
    captured = capsys.readouterr()
    assert json.loads(captured.out)["epochs_run"] == summary["epochs_run"] == 2  # stdout: the JSON alone
    assert captured.err.strip() == (f"--resume: continuing from {out / 'checkpoint.pt'}, which holds epoch 2 of "
                                    "--epochs 2: nothing left to train (raise --epochs to train on)")


def test_gamma_plot_names_the_files_it_wrote(tmp_path, capsys):
    out = _gamma_text(capsys, "--x", "1", "2", "--plot", str(tmp_path))
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["gamma_vi_theta_vs_x.png", "gamma_vi_x1.png", "gamma_vi_x2.png"]
    for name in written:
        assert f"plot: {tmp_path / name}" in out.splitlines()


# ------------------------------------------------------------------ 9: the VQ-VAE loss figure
def test_vqvae_loss_figure_shows_codebook_and_commitment_once_with_their_weights(tmp_path, monkeypatch):
    import numpy as np

    import vae.plots
    from vae.cli import vqvae

    figures = {}
    for module in (vae.plots, vqvae):
        real = module.save_figure

        def keep(fig, path, *a, _real=real, **k):
            figures[Path(path).name] = fig
            return _real(fig, path, *a, **k)
        monkeypatch.setattr(module, "save_figure", keep)
    vqvae.run_cli(["--quick", "--variants", "plain", "ema", "--max-samples", "64", "--epochs", "2", "--beta", "0.25",
                   "--out", str(tmp_path), "--no-progress", "--json", "--device", "cpu", "--threads", "1"])

    def panels(fig):
        return [(ax.get_title(), {ln.get_label(): np.asarray(ln.get_ydata(), float) for ln in ax.get_lines()})
                for ax in fig.axes if ax.get_lines()]

    plain = panels(figures["plain_loss.png"])
    data = [np.concatenate(list(lines.values())) for _, lines in plain]
    for i in range(len(data)):  # no two panels show the same numbers
        for j in range(i):
            assert data[i].shape != data[j].shape or not np.allclose(data[i], data[j])
    (title, lines), = [(t, ls) for t, ls in plain if any("codebook" in k for k in ls)]
    assert "same number" in title
    for split in ("train", "val"):
        book, = [v for k, v in lines.items() if k.startswith("codebook") and "× 1" in k and split in k]
        commit, = [v for k, v in lines.items() if k.startswith("commitment") and "× β = 0.25" in k and split in k]
        np.testing.assert_allclose(commit, 0.25 * book, rtol=1e-6)  # the same loss, weighted 1 and β
    ema = panels(figures["ema_loss.png"])
    assert not any("codebook" in k for _, ls in ema for k in ls)
    assert any("no codebook loss" in t for t, _ in ema)


# ------------------------------------------------------------------ 10: the SC-VAE command's loss figures
def test_scvae_loss_figures_name_each_models_own_terms(tmp_path, monkeypatch):
    import vae.plots
    from vae.cli import scvae

    figures = {}
    real = vae.plots.save_figure

    def keep(fig, path, *a, **k):
        figures[Path(path).name] = fig
        return real(fig, path, *a, **k)
    monkeypatch.setattr(vae.plots, "save_figure", keep)
    scvae.run_cli(["--quick", "--max-samples", "64", "--epochs", "1", "--iwae-samples", "0", "--lam", "0.5",
                   "--out", str(tmp_path), "--no-progress", "--json", "--device", "cpu", "--threads", "1"])

    def text(fig):
        return fig._suptitle.get_text(), [ax.get_title() for ax in fig.axes]

    title, panels = text(figures["vae_loss.png"])
    assert panels == ["loss", "recon", "kl"] and "l1" not in title and "‖c‖₁" not in title
    assert "loss = recon + kl" in title
    title, panels = text(figures["scvae_loss.png"])
    assert panels == ["loss", "recon", "kl", "l1"] and "loss = recon + kl + λ·l1" in title and "λ = 0.5" in title


@pytest.mark.parametrize("module, normal, quick", [
    ("latent_plane", (50, 100, None, 1000, 1e-3, 0.05), (6, 32, None, 100, 1e-3, 0.05)),
    ("scvae", (50, 100, None, 1000, 1e-3, 0.05), (5, 32, 2000, 50, 1e-3, 0.05)),
])
def test_training_option_defaults_and_quick_defaults_of_the_commands(module, normal, quick):
    import importlib

    from vae.cli.options import resolve_quick

    mod = importlib.import_module(f"vae.cli.{module}")

    def parsed(argv):
        a = resolve_quick(mod.build_parser().parse_args(argv), mod.DEFAULTS, mod.QUICK)
        return a.epochs, a.batch_size, a.max_samples, a.iwae_samples, a.lr, a.val_fraction

    assert parsed([]) == normal and parsed(["--quick"]) == quick
    assert parsed(["--quick", "--epochs", "3", "--iwae-samples", "0"])[::3] == (3, 0)  # given options win
    help_text = mod.build_parser().format_help()
    assert f"(default: {normal[0]}; --quick: {quick[0]})" in help_text
