"""The package's command lines. Each module has ``main(argv=None) -> int`` (the exit status) and
``run_cli(argv) -> dict`` (the same run, returning its summary; errors propagate), and is installed
as a command (``pyproject.toml`` ``[project.scripts]``) beside a thin script in ``examples/``:

    vae-train         vae.cli.train          examples/train_vae.py
    vae-study         vae.cli.study          examples/dsprites_study.py
    vae-vqvae         vae.cli.vqvae          examples/train_vqvae.py
    vae-scvae         vae.cli.scvae          examples/train_scvae.py
    vae-autoencoder   vae.cli.autoencoder    examples/train_autoencoder.py
    vae-latent-plane  vae.cli.latent_plane   examples/vae_latent_plane.py
    vi-gamma          vi.cli                 examples/gamma_vi.py
    pgm-check         pgm.cli                examples/check_independence.py

:mod:`vae.cli.options` holds what they share (number types, the run options ``--device --seed
--out --json --threads --no-progress``, the run folder, the error handling); it imports only the
standard library, so ``vi.cli`` uses it too. Importing this package imports nothing else.
"""
