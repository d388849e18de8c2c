"""oneDNN's kernels against Eigen's, per CPU class: training and inference images/s of every half, side by side.

    python bench/kernels_bench.py [--models resnet18,vgg13,...] [--sizes 32,96] [--isas native,AVX512_CORE,AVX2]
                                  [--halves legacy,modern,keras3-tensorflow,keras3-tensorflow-jit,keras3-jax]
                                  [--batch 16] [--steps 4] [--repeat 1]

What it answers: which kernels core/kernels.py should choose for training and for prediction on each class of
x86-64 CPU (DESIGN §8, "CPU kernels"). TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, at its import, and
oneDNN reads ``ONEDNN_MAX_CPU_ISA`` once, so every cell is a process of its own: one per half, kernel set and ISA,
measuring each model at each size in turn (keras3_bench.measure: the model as train.py compiles it, ``fit`` and
``predict`` on random inputs, float32; legacy: ``training_graph``'s step and the logits in a Session).

* kernels: ``onednn`` (``TF_ENABLE_ONEDNN_OPTS=1``) and ``eigen`` (``=0``), set explicitly in the cell's
  environment, so core/kernels.py's own choice is not what is measured;
* ISA: ``native`` (the CPU as it is) and oneDNN's caps (``ONEDNN_MAX_CPU_ISA=AVX2`` emulates an AVX2-only CPU:
  oneDNN's convolutions then report ``isa:Intel AVX2`` under ``ONEDNN_VERBOSE=1``). The cap is set on the Eigen
  rows too, because Eigen's contractions also call oneDNN's GEMM. It cannot make Eigen's own kernels slower than
  they are on this CPU, so the Eigen rows of an emulated class are this CPU's Eigen, an upper bound for the class;
* ``keras3-tensorflow-jit``: keras3 on TensorFlow with XLA (``jit_compile=True``); ``keras3-jax`` runs XLA's own
  CPU kernels, which neither variable touches, so it is measured once, natively.

The bundled oneDNN runs on TensorFlow's thread pool (``ThreadPoolInterface``), so ``OMP_*`` and ``KMP_*`` change
nothing. Figures are ratios in one run: the machine may be shared. The README has the figures this machine gave.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HALVES = ("legacy", "modern", "keras3-tensorflow", "keras3-tensorflow-jit", "keras3-jax")
KERNELS = {"onednn": "1", "eigen": "0"}
# one net of each family that takes 32x32 and 96x96 (vgg_16 and inception_v3 only at their own sizes)
MODELS = ("resnet18", "jianshu_resnet_50", "vgg13", "densenet_100x12", "inception_v2")


def cell(half, kernels, isa, models, sizes, batch, steps):
    """One process: ``{"model size": {train, infer, compile_s} or {"error": ...}}``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"}
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if kernels is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = KERNELS[kernels]
    if isa != "native":
        env["ONEDNN_MAX_CPU_ISA"] = isa
    if half.startswith("keras3-"):
        env["KERAS_BACKEND"] = half.split("-")[1]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", half, "--models", ",".join(models),
                           "--sizes", ",".join(map(str, sizes)), "--batch", str(batch), "--steps", str(steps)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}, 0.0
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.perf_counter() - start


def worker(half, models, sizes, batch, steps):
    sys.path.insert(0, str(REPO / "bench"))
    from keras3_bench import measure
    from tensorflow.python.util import _pywrap_util_port
    figures = {"onednn": bool(_pywrap_util_port.IsMklEnabled())}
    for model in models:
        for size in sizes:
            try:
                figures[f"{model} {size}"] = measure(half, model, batch, steps, size)
            except Exception as failed:  # noqa: BLE001 (a cell that fails is reported, the others go on)
                figures[f"{model} {size}"] = {"error": f"{type(failed).__name__}: {str(failed)[:200]}"}
    print(json.dumps(figures))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated registered models")
    p.add_argument("--sizes", default="32,96", help="comma-separated input sides")
    p.add_argument("--isas", default="native,AVX512_CORE,AVX2",
                   help="comma-separated: native, or ONEDNN_MAX_CPU_ISA values to emulate")
    p.add_argument("--halves", default=",".join(HALVES), help="comma-separated, of " + ", ".join(HALVES))
    p.add_argument("--batch", type=int, default=16, help="batch size")
    p.add_argument("--steps", type=int, default=4, help="timed steps per measurement")
    p.add_argument("--repeat", type=int, default=1, help="interleaved rounds (the median is shown)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--json", default=str(REPO / "bench/results/kernels.json"), help="where to write the figures")
    args = p.parse_args()
    models, sizes = args.models.split(","), [int(s) for s in args.sizes.split(",")]
    if args.worker:
        worker(args.worker, models, sizes, args.batch, args.steps)
        return
    cells = [(h, k, i) for i in args.isas.split(",") for h in args.halves.split(",")
             for k in ((None,) if h == "keras3-jax" else KERNELS) if h != "keras3-jax" or i == "native"]
    runs = {c: [] for c in cells}
    started = time.perf_counter()
    for round_ in range(args.repeat):
        for c in cells:
            result, seconds = cell(*c, models, sizes, args.batch, args.steps)
            runs[c].append(result)
            print(f"  [{time.perf_counter() - started:6.0f} s] round {round_ + 1}: {c[0]} {c[1] or ''} {c[2]}"
                  f" ({seconds:.0f} s){' failed: ' + str(result['error']) if 'error' in result else ''}",
                  file=sys.stderr, flush=True)
    figures = {}
    for (half, kernels, isa), results in runs.items():
        for model in models:
            for size in sizes:
                done = [r[f"{model} {size}"] for r in results if "error" not in r.get(f"{model} {size}", r)]
                for key in ("train", "infer"):
                    if done:
                        figures[f"{model} {size} {isa} {half} {kernels or 'xla'} {key}"] = statistics.median(
                            d[key] for d in done)
    print(f"images/s, batch {args.batch}, median of {args.repeat}; oneDNN / Eigen per cell:")
    for model in models:
        for size in sizes:
            for isa in args.isas.split(","):
                for half in args.halves.split(","):
                    key = f"{model} {size} {isa} {half}"
                    if half == "keras3-jax":
                        if f"{key} xla train" in figures:
                            print(f"  {key:<50} xla    train {figures[f'{key} xla train']:8.1f}"
                                  f"  infer {figures[f'{key} xla infer']:8.1f}")
                        continue
                    got = {k: figures.get(f"{key} {k} train") for k in KERNELS}
                    if None in got.values():
                        print(f"  {key:<50} failed (above)")
                        continue
                    line = "  ".join(f"{k} train {figures[f'{key} {k} train']:8.1f} infer"
                                     f" {figures[f'{key} {k} infer']:8.1f}" for k in KERNELS)
                    print(f"  {key:<50} {line}  oneDNN/Eigen train"
                          f" {got['onednn'] / got['eigen']:5.2f}x infer"
                          f" {figures[f'{key} onednn infer'] / figures[f'{key} eigen infer']:5.2f}x")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({**vars(args), "figures": figures,
                                           "runs": {" ".join(map(str, c)): r for c, r in runs.items()}},
                                          indent=2) + "\n")
    print(f"  -> {args.json}")


if __name__ == "__main__":
    main()
