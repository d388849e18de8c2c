"""tf_slim's nets: modern training and inference images/s against tf_slim's own graph in a Session, side by side.

    python bench/slim_nets_bench.py [--models inception_v3,resnet_v2_50,vgg_16] [--batch 16] [--steps 6] [--repeat 2]

Each net at its default input size (the model table's), float32, random inputs made on the device:

* legacy: ``Session.run`` of legacy/train.py's own ``training_graph`` step (tf_slim's function under its arg scope,
  Momentum, UPDATE_OPS; inception_v3 with its auxiliary loss) and of the inference logits;
* modern: ``fit`` of the model as modern/train.py compiles it (``compiled_model``: its optimizer, metrics,
  ``steps_per_execution`` 8 at the default ``--save-every``; inception_v3 with its auxiliary loss layer) and
  ``predict`` of the prediction model.

The measurements are interleaved and repeated; medians are shown. The goal (issue 16): modern / legacy training
>= 0.95 for inception_v3, resnet_v2_50 and vgg_16.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import modern  # noqa: E402
from core import models  # noqa: E402
from flowio.reader import NO_AUTOTUNE_THREAD  # noqa: E402
from modern.train import compiled_model, steps_per_execution  # noqa: E402
from resnet_bench import DEFAULT_SAVE_EVERY, NUM_CLASSES, Legacy, Modern, run_spec  # noqa: E402


class ModernCompiled(Modern):
    """``Modern`` on train.py's compiled model; a model with an auxiliary head takes ``(images, labels)``."""

    def __init__(self, model, batch, size, aux):
        super().__init__(model, batch, size)
        if aux:
            self.data = self.data.map(lambda images, labels: ((images, labels), labels)).with_options(
                NO_AUTOTUNE_THREAD)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="inception_v3,resnet_v2_50,vgg_16", help="comma-separated tf_slim nets")
    p.add_argument("--batch", type=int, default=16, help="batch size")
    p.add_argument("--steps", type=int, default=6, help="timed steps per measurement (modern: whole executions)")
    p.add_argument("--repeat", type=int, default=2, help="interleaved repeats (the median is shown)")
    p.add_argument("--json", default=str(REPO / "bench/results/slim_nets.json"), help="where to write the figures")
    args = p.parse_args()

    figures, runs = {}, {}
    for name in args.models.split(","):
        size = models.default_input_size(name)
        aux = bool(models.aux_scopes(name))
        old = Legacy(name, size, args.batch, "float32")
        run = run_spec(name, size, "float32")
        trained = ModernCompiled(compiled_model(run, 1, steps_per_execution(DEFAULT_SAVE_EVERY, DEFAULT_SAVE_EVERY)),
                                 args.batch, size, aux)
        predicting = Modern(modern.build(name, NUM_CLASSES), args.batch)
        measures = {f"{name}_legacy_train": lambda: old.train(args.steps),
                    f"{name}_modern_train": lambda: trained.train_as_compiled(args.steps),
                    f"{name}_legacy_infer": lambda: old.infer(args.steps),
                    f"{name}_modern_infer": lambda: predicting.infer(args.steps)}
        for key in measures:
            runs[key] = []
        for _ in range(args.repeat):
            for key, measure in measures.items():
                runs[key].append(measure() * args.batch)
        for key in measures:
            figures[key] = statistics.median(runs[key])
        for what in ("train", "infer"):
            ratio = figures[f"{name}_modern_{what}"] / figures[f"{name}_legacy_{what}"]
            figures[f"{name}_modern_vs_legacy_{what}"] = ratio
        print(f"{name} at {size}x{size}, batch {args.batch}, images/s (median of {args.repeat}):", flush=True)
        for key in [*measures, f"{name}_modern_vs_legacy_train", f"{name}_modern_vs_legacy_infer"]:
            print(f"  {key:<44} {figures[key]:8.2f}", flush=True)
        old.sess.close()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({**vars(args), **figures, "runs": runs}, indent=2) + "\n")
    print(f"  -> {args.json}")


if __name__ == "__main__":
    main()
