"""Training: one ``fit`` loop for every model that exposes ``loss_terms(x) -> dict`` (or any objective).

Modules: :mod:`~vae.training.loop` (``fit``), :mod:`~vae.training.run` (one run's state and steps),
:mod:`~vae.training.history`, :mod:`~vae.training.checkpoints`,
:mod:`~vae.training.batches` (batches, epoch slices), :mod:`~vae.training.batchnorm` (recalibration),
:mod:`~vae.training.distributed` (torchrun / DDP), :mod:`~vae.training.runs` (``load_run``); data staging is
:mod:`vae.staging`.

Any ``nn.Module`` whose ``loss_terms(x)`` returns a dict of scalar tensors — per-batch *sums*, key
``"loss"`` required, others (``"recon"``, ``"kl"``, ``"commitment"``, ...) logged — trains with::

    >>> import torch
    >>> from vae.data import ImageDataset
    >>> class Toy(torch.nn.Module):          # squared error to a learned image
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.mu = torch.nn.Parameter(torch.zeros(1, 2, 2))
    ...     def loss_terms(self, x):
    ...         se = ((x - self.mu) ** 2).sum()
    ...         return {"loss": se, "se": se}
    >>> data = ImageDataset(torch.rand(64, 1, 2, 2))
    >>> history = fit(Toy(), data, epochs=3, batch_size=16, lr=0.1, progress=False)
    >>> [row["epoch"] for row in history.rows], sorted(history.final())
    ([1, 2, 3], ['epoch', 'seconds', 'train_loss', 'train_se', 'val_loss', 'val_se'])

For a :class:`vae.model.VAE`, ``loss_terms`` is Pyro's ELBO (``Trace_ELBO`` or, with analytic KL,
``TraceMeanField_ELBO``) read from one guide trace and the model replayed on it, so ``fit`` trains
exactly what ``pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam(...), vae.pyro_elbo())`` trains;
plain Pyro users can run that SVI loop themselves. ``fit`` uses ``torch.optim.Adam`` over
``model.parameters()`` — the same ``nn.Parameter`` objects ``pyro.module(name, vae)`` registers in
Pyro's param store. ``pyro.module`` registers *every* parameter of the module tree, the prior's
included (VampPrior pseudo-inputs, MoG weights/means/scales), so the plain SVI loop trains them too.

What ``fit`` does, in order:

* splits ``data`` with ``ImageDataset.split(val_fraction, seed)``;
* seeds torch, numpy, ``random`` and Pyro (``pyro.set_rng_seed``) and a private ``torch.Generator``
  for the batch permutation;
* keeps the images on the device when they fit (``keep_on_device=None``: under half the free GPU
  memory; exact ``k/255`` images are stored as uint8 there), else pins them in host memory and
  copies each batch asynchronously;
* calls ``loss_terms`` once on a small batch (eval mode, no gradient) before building the optimiser,
  so lazily created parameters exist and a malformed ``loss_terms`` fails early and clearly;
* refuses a model with BatchNorm when a training batch would hold a single image;
* minimises ``loss / batch_size`` with Adam; loss terms are accumulated *on the device* and read
  (one host synchronisation) every ``check_every`` steps and at the end of each epoch;
* after each epoch's training steps (before validation and the checkpoint) re-estimates BatchNorm
  running statistics with :func:`recalibrate_batchnorm` (models with BatchNorm only; a few no-grad
  passes over training batches, with its own seeded RNG: training itself is unchanged). Keras's
  momentum 0.99 (torch 0.01) leaves the running statistics near their initial values after short
  runs, so eval-mode outputs would otherwise be far from the train-mode ones;
* stops with :class:`TrainingDiverged` as soon as a loss or a parameter is NaN/Inf — the checkpoint
  on disk keeps the last good epoch, it is never overwritten with non-finite parameters;
* writes the checkpoint atomically (temporary file + ``os.replace``) after each epoch: model and
  optimiser state, history, epoch, every RNG state, configuration. ``resume=True`` continues from it
  and reproduces an uninterrupted run bit for bit on CPU. It refuses (``ValueError`` listing the
  differences) a checkpoint whose configuration — split, seed, batch size, loss terms, learning
  rate, model class, data, transform and every ``config`` entry — differs from this run's (only
  ``epochs`` may change), or whose parameters do not fit the model;
* on Ctrl-C raises :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) after the last completed
  epoch's checkpoint is on disk.

History rows hold per-image means: ``train_<k>`` is the sum of the batch values of term ``k`` over
the epoch divided by the number of training images (as Keras reports it, while the parameters move),
``val_<k>`` the same over the validation images after the epoch, in eval mode without gradients.
"""
from __future__ import annotations

from vae.training.batchnorm import has_batchnorm, recalibrate_batchnorm
from vae.training.checkpoints import CHECKPOINT_FORMAT, load_checkpoint, restore_model, save_checkpoint
from vae.training.distributed import is_main_process
from vae.training.errors import TrainingDiverged, TrainingInterrupted
from vae.training.history import History
from vae.training.loop import fit
from vae.training.runs import LoadedRun, build_from_spec, load_run, model_spec

__all__ = ["fit", "History", "TrainingDiverged", "TrainingInterrupted", "save_checkpoint", "load_checkpoint",
           "restore_model", "recalibrate_batchnorm", "has_batchnorm", "is_main_process", "CHECKPOINT_FORMAT",
           "load_run", "model_spec", "build_from_spec", "LoadedRun"]
