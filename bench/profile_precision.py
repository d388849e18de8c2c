"""Where a training step's time goes, per kind of op, in float32 and in a mixed precision, for both halves.

    python bench/profile_precision.py [--model jianshu_resnet_50] [--size 224] [--batch 16] [--steps 4]
                                      [--precision mixed_bfloat16] [--json bench/results/profile.json]

The profile behind bench/run.py's "mixed_bfloat16 / float32 training" ratio: a ratio below the goal is
explained by the ops that do not get faster. TensorFlow's own profiler (``tf.profiler.experimental``) records
every op kernel a training step runs, for legacy/train.py's graph in its Session (grappler's rewrite included)
and for modern/train.py's compiled ``fit``; the op events on TensorFlow's executor threads are summed by op
type into groups (convolutions, batch norm, casts, ...), in milliseconds per step. With two executor threads
the op times of a step add up to more than its wall time, so compare the groups with each other and across
precisions, not with the wall time.
"""

import argparse
import collections
import glob
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from legacy.slim_compat import tf as tf1  # noqa: E402
from resnet_bench import NUM_CLASSES, run_spec  # noqa: E402
from legacy.train import session_config, training_graph  # noqa: E402
from modern.train import compiled_model  # noqa: E402

# Op type -> group: the first group one of whose names is in the type wins, so oneDNN's rewritten types
# (_MklNativeConv2D, _FusedConv2D, _MklNativeFusedBatchNormV3, ...) fall where their plain ones do.
GROUPS = [
    ("convolution, backward", ("Conv2DBackprop", "DepthwiseConv2dNativeBackprop")),
    ("convolution", ("Conv2D", "DepthwiseConv2dNative")),
    ("batch norm, backward", ("FusedBatchNormGrad",)),
    ("batch norm", ("FusedBatchNorm",)),
    ("cast", ("Cast",)),
    ("relu, backward", ("ReluGrad",)),
    ("relu", ("Relu",)),
    ("pad / concat / slice (shortcuts)", ("Pad", "Concat", "Slice", "Split", "ZerosLike", "Fill")),
    ("pooling / mean", ("MaxPool", "AvgPool", "Mean")),
    ("matmul / bias", ("MatMul", "BiasAdd")),
    ("optimizer update", ("ResourceApply", "Apply", "Assign")),
    ("add / sum / mul", ("Add", "Sum", "Mul", "Sub")),
]


def group(op_type):
    return next((name for name, parts in GROUPS if any(p in op_type for p in parts)), "other")


def op_times(logdir):
    """``{op type: total microseconds}`` of the op events on the executor threads of the newest trace."""
    path = sorted(glob.glob(f"{logdir}/plugins/profile/*/*.xplane.pb"))[-1]
    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(path).read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        names = plane.event_metadata
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names[event.metadata_id].name
                if ":" in name and not name.startswith(("Threadpool", "Executor")):
                    totals[name.rsplit(":", 1)[1]] += event.duration_ps / 1e6
    return totals


def profiled(step, steps, logdir):
    """Run ``step(n)`` (n training steps) under the profiler; return (wall s per step, op µs by type)."""
    step(2)  # warm-up: grappler's rewrite, oneDNN's primitive caches
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    step(steps)
    wall = (time.perf_counter() - start) / steps
    tf.profiler.experimental.stop()
    return wall, op_times(logdir)


def legacy_step(name, size, batch, precision):
    graph = tf1.Graph()
    with graph.as_default():
        images = tf1.random.uniform([batch, size, size, 3])
        labels = tf1.random.uniform([batch], 0, NUM_CLASSES, dtype=tf1.int64)
        *_, train_op = training_graph(run_spec(name, size, "float32"), images, labels, 1)
        init = tf1.global_variables_initializer()
    sess = tf1.Session(graph=graph, config=session_config(precision))
    sess.run(init)

    def step(n):
        for _ in range(n):
            sess.run(train_op)
    return step


def modern_step(name, size, batch, precision):
    model = compiled_model(run_spec(name, size, precision), 1, 1)
    images = tf.random.uniform([batch, size, size, 3])
    labels = tf.random.uniform([batch], 0, NUM_CLASSES, dtype=tf.int64)
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()

    def step(n):
        model.fit(data, steps_per_epoch=n, epochs=1, verbose=0)
    return step


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="jianshu_resnet_50", help="registered model to profile")
    p.add_argument("--size", type=int, default=224, help="input side")
    p.add_argument("--batch", type=int, default=16, help="batch size")
    p.add_argument("--steps", type=int, default=4, help="profiled training steps")
    p.add_argument("--precision", default="mixed_bfloat16", help="the precision compared with float32")
    p.add_argument("--halves", default="legacy,modern", help="comma-separated halves to profile")
    p.add_argument("--json", default=str(REPO / "bench/results/profile.json"), help="where to write the figures")
    args = p.parse_args()

    makers = {"legacy": legacy_step, "modern": modern_step}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for half in args.halves.split(","):
            for precision in ("float32", args.precision):
                logdir = f"{tmp}/{half}-{precision}"
                wall, ops = profiled(makers[half](args.model, args.size, args.batch, precision), args.steps, logdir)
                results[f"{half}_{precision}"] = {"wall_ms_per_step": 1000 * wall,
                                                  "op_ms_per_step": {k: v / 1000 / args.steps for k, v in ops.items()}}

    print(f"{args.model}, {args.size}x{args.size}, batch {args.batch}: op time per training step (ms), "
          f"summed over TensorFlow's executor threads, by group")
    summary = {}
    for half in args.halves.split(","):
        f32, mixed = (results[f"{half}_{p}"] for p in ("float32", args.precision))
        groups = {}
        for which, res in (("float32", f32), (args.precision, mixed)):
            for op_type, ms in res["op_ms_per_step"].items():
                groups.setdefault(group(op_type), {"float32": 0.0, args.precision: 0.0})[which] += ms
        total = {w: sum(g[w] for g in groups.values()) for w in ("float32", args.precision)}
        saved = total["float32"] - total[args.precision]
        print(f"\n{half}: wall {f32['wall_ms_per_step']:.0f} -> {mixed['wall_ms_per_step']:.0f} ms/step"
              f" ({f32['wall_ms_per_step'] / mixed['wall_ms_per_step']:.2f}x); op time {total['float32']:.0f} ->"
              f" {total[args.precision]:.0f} ms ({total['float32'] / total[args.precision]:.2f}x)")
        print(f"  {'group':<34} {'float32':>9} {args.precision:>15} {'speed-up':>9} {'share of ' + args.precision:>22}")
        for name, g in sorted(groups.items(), key=lambda kv: -kv[1][args.precision]):
            speedup = g["float32"] / g[args.precision] if g[args.precision] else float("inf")
            print(f"  {name:<34} {g['float32']:9.1f} {g[args.precision]:15.1f} {speedup:8.2f}x"
                  f" {100 * g[args.precision] / total[args.precision]:21.1f}%")
        top = sorted(mixed["op_ms_per_step"].items(), key=lambda kv: -kv[1])[:12]
        print(f"  slowest op types in {args.precision}: " + ", ".join(f"{k} {v:.1f}" for k, v in top))
        summary[half] = {"groups": groups, "total_ms": total, "saved_ms": saved}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({**vars(args), "runs": results, "summary": summary}, indent=2) + "\n")
    print(f"\n-> {args.json}")


if __name__ == "__main__":
    main()
