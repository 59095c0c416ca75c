"""The README's measured numbers, rendered from the committed result files in ``benchmarks/results/``.

Every table of numbers in README.md's results section sits between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->`` and is produced here from a result file written by the script that
measured it (each file records its command, device and date). ``tests/test_readme_numbers.py``
checks that the README's blocks equal what this script renders, so a number in the README can only
change by rerunning a measurement and regenerating:

    python benchmarks/readme_numbers.py --write      # rewrite the blocks in README.md
    python benchmarks/readme_numbers.py --check      # exit 1 when README.md is stale
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"<!-- results:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /results:(?P=name) -->", re.S)


def _json(name: str):
    return json.loads((RESULTS / name).read_text())


def _grab(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    if not m:
        raise ValueError(f"pattern {pattern!r} not found in a result file")
    return m.group(1)


def speed() -> str:
    pgm = (RESULTS / "pgm_bench_cpu.txt").read_text()
    mig = _json("mig_bench_cpu.json")
    data = _json("bench_data.json")
    g = {
        "ours": _grab(r"ours \(verdict only\)\s+([\d.]+ µs)", pgm),
        "pgmpy": _grab(r"pgmpy is_dconnected\s+([\d.]+ µs)", pgm),
        "nx": _grab(r"networkx is_d_separator\s+([\d.]+ µs)", pgm),
        "ratio": _grab(r"verdict only:\s+ours/pgmpy = ([\d.]+)", pgm),
        "expl": _grab(r"fully explained, as the CLI prints\)\s+([\d.]+ µs)", pgm),
        "expl_ratio": _grab(r"fully explained: ours/pgmpy = ([\d.]+)", pgm),
        "lay": _grab(r"--limit 100 fully explained: median\s+([\d.]+ ms)", pgm),
        "lay_max": _grab(r"--limit 100 fully explained: median\s+[\d.]+ ms, max\s+([\d.]+ ms)", pgm),
    }
    rows = [
        "| what | ours | reference, same run | ratio | source |",
        "|---|---|---|---|---|",
        f"| d-separation verdict, random DAG 2,000 nodes / 4,000 edges (median of 1,000 queries) | {g['ours']} | "
        f"pgmpy `is_dconnected` {g['pgmpy']}; networkx {g['nx']} | {g['ratio']}× pgmpy | `pgm_bench_cpu.txt` |",
        f"| the same, fully explained (witness with collider reasons, or blocked trails) | {g['expl']} | "
        f"pgmpy's verdict only | {g['expl_ratio']}× (target ≤ 3) | `pgm_bench_cpu.txt` |",
        f"| layered 60-node DAG, `{{A…}} ⊥ {{C…}} \\| {{B…}}` explained, `--limit 100` (median / worst) | "
        f"{g['lay']} / {g['lay_max']} | — | — | `pgm_bench_cpu.txt` |",
        f"| MIG on {mig['n_points']:,} × {mig['latent_dims']} latents | {mig['ours_seconds']:.2f} s | "
        f"{mig['reference_seconds']:.1f} s (sklearn `mutual_info_score` per pair) | {mig['speedup']:.0f}× faster, "
        f"\\|Δscore\\| {mig['abs_difference']:.1e} | `mig_bench_cpu.json` |",
        f"| dSprites: all 737,280 images generated procedurally | {data['generate_all_737280_s']:.1f} s | — | — | "
        f"`bench_data.json` |",
    ]
    return "\n".join(rows) + "\n"


def training() -> str:
    t = _json("train_bench_cpu.json")
    out = [f"Measured {t['date']} on {t['device_name']} ({t['threads']} threads, torch {t['torch']}): attainable "
           f"fp32 {t['attainable_gflops']:.0f} GFLOP/s (a 2048³ matmul in the same run).", "",
           "| network | batch | GFLOP per image-step | `fit` images/s | plain PyTorch | `pyro.infer.SVI` | fit / plain "
           "| fit: fraction of attainable | NCHW plain loop (before) | channels-last speed-up |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for a in t["archs"]:
        ips, frac = a["images_per_s"], a["fraction_of_attainable"]
        out.append(f"| {a['arch']} | {a['batch_size']} | {a['gflop_per_image_step']:.4f} | {ips['fit']:.0f} | "
                   f"{ips['plain']:.0f} | {ips['svi']:.0f} | {a['ratio_fit_plain']:.2f} | {frac['fit']:.2f} | "
                   f"{ips['plain_nchw']:.0f} ({a['fraction_of_attainable']['plain_nchw']:.2f}) | "
                   f"{a['speedup_channels_last']:.2f}× |")
    d = _json("ddp_bench_cpu.json")
    out += ["", f"`fit` under torchrun (gloo, one thread per process, global batch {d['global_batch']}): "
                f"{d['images_per_s_1_process']:.0f} images/s in 1 process, {d['images_per_s_2_processes']:.0f} in 2 "
                f"({d['speedup']:.2f}×); after {d['global_steps']} global steps the parameters of the 2-process run "
                f"differ from the 1-process run by at most {d['max_parameter_difference']:.1e} "
                f"({d['max_parameter_difference_after_2_steps']:.1e} after 2 steps: floating-point summation order, "
                f"amplified by Adam's normalisation over the steps) (`ddp_bench_cpu.json`)."]
    return "\n".join(out) + "\n"


def metrics() -> str:
    m = _json("metrics_bench_cpu.json")
    out = [f"{m['n_train']:,} points, {m['device']}, {m['date']} (`metrics_bench_cpu.json`):", "",
           "| metric | ours (CPU s) | reference recipe (CPU s) | reference / ours | \\|Δscore\\| |", "|---|---|---|---|---|"]
    for r in m["results"]:
        out.append(f"| {r['metric']} | {r['ours_cpu_seconds']:.2f} | {r['reference_cpu_seconds']:.2f} | "
                   f"{r['ratio']:.2f} | {r['abs_difference']:.1e} |")
    return "\n".join(out) + "\n"


def study() -> str:
    sys.path.insert(0, str(ROOT))
    from vae.protocol_report import answer, summarise

    records = _json("dsprites_study_cpu.json")["records"]
    summary = summarise(records)
    r0 = records[0]
    out = [f"Protocol `{r0['protocol']}`: {r0['arch']} network, latent {r0['latent_dim']}, batch {r0['batch_size']}, "
           f"Adam {r0['lr']:g}, {r0['steps']:,} steps per run, {summary[0]['n_seeds']} seeds per β; "
           f"{r0['device']}; {sum(r['wall_seconds'] for r in records) / 3600:.1f} h of training in all "
           f"(`dsprites_study_cpu.json`).", "",
           "| β | MIG, mean [95 % bootstrap] | per seed | null (factors shuffled) | best factor (mean MIG term) | "
           "active dims | val recon (nats) | val KL (nats) |", "|---|---|---|---|---|---|---|---|"]
    for s in summary:
        m = s["mig"]
        f, v = max(s["per_factor"].items(), key=lambda kv: kv[1]["mean"])
        out.append(f"| {s['beta']:g} | {m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}] | "
                   f"{', '.join(f'{x:.3f}' for x in m['values'])} | {s['null']['mean']:.4f} | {f} {v['mean']:.2f} | "
                   f"{s['active_dims']:.1f} | {s['val_recon']:.1f} | {s['val_kl']:.1f} |")
    out += ["", answer(summary, records)]
    return "\n".join(out) + "\n"


VAMPPRIOR_VARIANTS = {  # result file: the line above its table (None: the protocol's own table)
    "vampprior_mnist5k.json": None,
    "vampprior_mnist5k_offset.json": "The same protocol with the pseudo-inputs sharing one learned offset image "
                                     "(`--pseudo-inputs shared-offset`, `VampPrior(shared_offset=True)`):",
}


def _vampprior_table(file: str) -> list[str]:
    v = _json(file)
    runs = {r["run"]: r for r in v["runs"]}
    seeds = sorted({r["seed"] for r in v["runs"]})
    cols = [k for k in v["mean_nll"] if v["mean_nll"][k] is not None]
    name = {"normal": "standard prior"} | {k: f"VampPrior K = {k[4:]}" for k in cols if k.startswith("vamp")}
    out = [f"{v['device']}, {v['date']}; {v['protocol']} (`{file}`).", "",
           "| seed | " + " | ".join(name[k] for k in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for s in seeds:
        cells = [f"{runs[f'{k}_seed{s}']['test_nll']:.2f}" if f"{k}_seed{s}" in runs else "—" for k in cols]
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    out.append("| mean | " + " | ".join(f"{v['mean_nll'][k]:.2f}" for k in cols) + " |")
    out.append("")
    out.append("; ".join(f"{name[k]} below the standard prior in {lo} of {n} seeds" for k, (lo, n) in v["lower_in"].items())
               + " (held-out IWAE NLL in nats, lower is better).")
    return out


def vampprior() -> str:
    out: list[str] = []
    for file, title in VAMPPRIOR_VARIANTS.items():
        if title is None or (RESULTS / file).is_file():
            out += ([] if not out else [""]) + ([title, ""] if title else []) + _vampprior_table(file)
    return "\n".join(out) + "\n"


def peer() -> str:
    v = _json("peer_bench_cpu.json")
    d = v["device"]
    dev = (f"{d['cpu']}, {d['cores']} cores, {d['threads']} threads, torch {d['torch']}, pythae {d['pythae']}, "
           f"load average {d['load_average_start'][0]:.1f}")
    out = [f"{dev}; {v['date'][:10]}; {v['n_train']:,} digits, batch 100, alternating rounds (`peer_bench_cpu.json`).", "",
           "| prior | ours / pythae, images/s (rounds) | ours with the for-loop Adam / pythae | NLL ours − pythae (nats) | "
           "ours − the same model with another batch order |", "|---|---|---|---|---|"]
    for prior, label in (("normal", "standard"), ("vamp", "VampPrior K = 500")):
        r = v["summary"][prior]
        loop = r.get("ratio_forloop", float("nan"))
        nll = (f"{r['nll_seed_diff']:+.2f} ± {r['nll_seed_diff_se']:.2f} (mean of {r['nll_seeds']} trainings)"
               if "nll_seeds" in r else f"{r['nll_diff']:+.2f} ± {r['nll_diff_se']:.2f}")
        out.append(f"| {label} | {r['ratio']:.2f}× ({r['ratio_min']:.2f}–{r['ratio_max']:.2f}) | {loop:.2f}× | "
                   f"{nll} | {r['nll_ours_minus_plain']:+.2f} |")
    free_file = RESULTS / "peer_bench_cpu_free_pseudo_inputs.json"
    free = json.loads(free_file.read_text())["summary"].get("vamp", {}) if free_file.is_file() else {}
    if "nll_seeds" in free:
        f = free
        out += ["", f"With free pseudo-inputs (the reference implementation's parametrisation, `--pseudo-inputs free`): "
                f"VampPrior {f['ratio']:.2f}× pythae's images/s, NLL ours − pythae {f['nll_seed_diff']:+.2f} ± "
                f"{f['nll_seed_diff_se']:.2f} over {f['nll_seeds']} trainings (`peer_bench_cpu_free_pseudo_inputs.json`)."]
    return "\n".join(out) + "\n"


def objectives() -> str:
    v = _json("objectives_cpu.json")
    out = [f"{v['device']}, {v['date']}; protocol {v['protocol']}; the β-VAE rows are the study's runs, each other "
           "objective one run (seed 0) (`objectives_cpu.json`).", "",
           "| objective | weights | runs | MIG | recon (nats) | KL (nats) | active dims |", "|---|---|---|---|---|---|---|"]
    for m in v["summary"]:
        cfg = ", ".join(f"{k} {val:g}" if isinstance(val, (int, float)) else f"{k} {val}"
                        for k, val in m["config"].items() if k != "name")
        out.append(f"| {m['objective']} | {cfg} | {m['runs']} | {m['mig']:.3f} | {m['recon']:.1f} | {m['kl']:.1f} | "
                   f"{m['active_dims']:.1f} |")
    return "\n".join(out) + "\n"


def variants() -> str:
    v = _json("variants_cpu.json")
    r = v["results"]
    ae, lp, vq, sc = r["autoencoder"], r["latent_plane"], r["vqvae"], r["scvae"]
    out = [f"{v['device']}, {v['date']}; each command at its defaults on the MNIST-5k digits (4,500 to train, "
           f"the 500 held out for every number) (`variants_cpu.json`).", "",
           "| model | result on the held-out digits | reference |", "|---|---|---|"]
    for name, t in ae["tasks"].items():
        out.append(f"| autoencoder `{name}`, {t['epochs']} epochs | PSNR {t['psnr']:.1f} dB | {t['baseline']}: "
                   f"{t['baseline_psnr']:.1f} dB |")
    out.append(f"| 2-d latent VAE, {lp['epochs']} epochs | IWAE NLL {lp['test_iwae_nll']:.1f} nats "
               f"(S = {lp['iwae_samples']:,}); 5-NN accuracy of the 2-d means {100 * lp['knn5_accuracy_2d']:.0f} % | — |")
    m = sc["models"]
    out.append(f"| SC-VAE, λ = {sc['lam']:g}, LISTA T = {sc['lista_steps']}, latent {sc['latent_dim']}, {sc['epochs']} epochs | "
               f"{100 * m['scvae']['fraction_zeros']:.0f} % exact zeros, Hoyer {m['scvae']['hoyer']:.2f}, "
               f"{m['scvae']['active_per_image']:.1f} active units, IWAE NLL {m['scvae']['test_iwae_nll']:.1f} | plain VAE: "
               f"{100 * m['vae']['fraction_zeros']:.0f} % zeros, Hoyer {m['vae']['hoyer']:.2f}, "
               f"{m['vae']['active_per_image']:.0f} active, NLL {m['vae']['test_iwae_nll']:.1f} |")
    out += ["", f"VQ-VAE, K = {vq['n_codes']}, {vq['epochs']} epochs (the mean image scores {vq['mean_image_psnr']:.1f} dB):", "",
            "| variant | perplexity | codes used | PSNR |", "|---|---|---|---|"]
    for name, x in vq["variants"].items():
        out.append(f"| {name} | {x['perplexity']:.1f} | {x['codes_used']} ({100 * x['usage']:.0f} %) | {x['psnr']:.1f} dB |")
    return "\n".join(out) + "\n"


def gamma() -> str:
    g = _json("variants_cpu.json")["results"]["gamma_vi"]
    out = ["```text", "      x        θ*     θ_svi  rel.err    ELBO (MC ± se)   log p(x)     |gap|    KL end"]
    for f in g["fits"]:
        out.append(f"{f['x']:7g} {f['theta_analytic']:9.4f} {f['theta_svi']:9.4f} {100 * f['theta_rel_error']:7.3f}%  "
                   f"{f['elbo']:9.5f} ±{f['elbo_stderr']:.0e} {f['log_evidence']:10.5f}  {abs(f['elbo_gap']):.2e}  {f['kl']:.2e}")
    out.append("```")
    return "\n".join(out) + "\n"


RENDERERS: dict[str, Callable[[], str]] = {"gamma": gamma, "variants": variants, "speed": speed, "training": training, "metrics": metrics, "study": study,
                                           "vampprior": vampprior, "objectives": objectives,
                                           "peer": peer}


def render(readme: str) -> str:
    """``readme`` with every results block re-rendered from the result files."""
    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in RENDERERS:
            raise ValueError(f"README block results:{name} has no renderer")
        return f"<!-- results:{name} -->\n{RENDERERS[name]()}<!-- /results:{name} -->"
    return BLOCK.sub(sub, readme)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="rewrite README.md's blocks")
    p.add_argument("--check", action="store_true", help="exit 1 when README.md differs from the rendering")
    a = p.parse_args(argv)
    path = ROOT / "README.md"
    text = path.read_text()
    new = render(text)
    if a.write:
        path.write_text(new)
    if a.check and new != text:
        print("README.md is stale: run python benchmarks/readme_numbers.py --write", file=sys.stderr)
        return 1
    if not a.write and not a.check:
        print(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
