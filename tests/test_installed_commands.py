"""The installed commands (pyproject.toml [project.scripts]) and the example scripts that wrap the
same modules: each command runs ``--help``; every example has ``--threads`` (validated, applied) and
is a thin wrapper without ``sys.path`` edits; the train command's choices are its registries'."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
COMMANDS = {  # command -> (module, the example script that wraps it)
    "pgm-check": ("pgm.cli", "check_independence"),
    "vae-train": ("vae.cli.train", "train_vae"),
    "vae-study": ("vae.cli.study", "dsprites_study"),
    "vae-vqvae": ("vae.cli.vqvae", "train_vqvae"),
    "vae-scvae": ("vae.cli.scvae", "train_scvae"),
    "vae-autoencoder": ("vae.cli.autoencoder", "train_autoencoder"),
    "vae-latent-plane": ("vae.cli.latent_plane", "vae_latent_plane"),
    "vi-gamma": ("vi.cli", "gamma_vi"),
}
# every example with run options (check_independence decides graphs: no torch, no threads)
THREADED = [name for name in COMMANDS if name != "pgm-check"]
ENV = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=ENV)


def test_pyproject_declares_every_command():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {name: f"{module}:main" for name, (module, _) in COMMANDS.items()}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_installed_command_runs_help(name):
    exe = shutil.which(name)
    assert exe, f"{name} is not installed: run pip install -e ."
    res = _run([exe, "--help"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: {name}") and "Traceback" not in res.stderr
    assert ("--threads" in res.stdout) == (name in THREADED)


@pytest.mark.parametrize("name", THREADED)
def test_bad_threads_is_a_one_line_usage_error(name):
    res = _run([sys.executable, str(EXAMPLES / f"{COMMANDS[name][1]}.py"), "--threads", "0"])
    assert res.returncode == 2 and res.stdout == ""
    errors = [line for line in res.stderr.splitlines() if "error:" in line]
    assert errors == [f"{COMMANDS[name][1]}.py: error: argument --threads: expected an integer in [1, 1024], got '0'"]
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("name", list(COMMANDS))
def test_examples_are_thin_wrappers_without_sys_path_edits(name):
    module, script = COMMANDS[name]
    text = (EXAMPLES / f"{script}.py").read_text()
    assert f"from {module} import main" in text and "sys.path" not in text
    body = ast.parse(text).body[1:]  # after the docstring: the import of main and the __main__ guard
    assert len(body) <= 4, [ast.unparse(node) for node in body]


def test_no_package_module_edits_sys_path():
    for folder in ("pgm", "vi", "vae"):
        for path in (ROOT / folder).rglob("*.py"):
            assert "sys.path" not in path.read_text(), path


def test_threads_default_and_set(monkeypatch):
    import torch

    from vae.cli import options

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert options.default_threads() == 3  # the user's choice for OpenMP is kept
    monkeypatch.delenv("OMP_NUM_THREADS")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert options.default_threads() == min(4, cores)
    before = torch.get_num_threads()
    try:
        assert options.set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="--threads"):
        options.set_threads(0)


def test_train_choices_are_the_registries():
    from vae.cli.train import DATASETS, build_parser
    from vae.nets import ARCHITECTURES
    from vae.objectives import OBJECTIVES
    from vae.priors import PRIORS

    choices = {a.dest: a.choices for a in build_parser()._actions if a.choices}
    assert list(choices["prior"]) == list(PRIORS)
    assert list(choices["objective"]) == list(OBJECTIVES)
    assert list(choices["arch"]) == list(ARCHITECTURES)
    assert list(choices["dataset"]) == list(DATASETS)
