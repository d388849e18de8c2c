"""Where flowio's conversion time goes: its phases with 1 and 2 workers, and one image's work against the bound.

    python bench/profile_flowio.py [--images 3000] [--repeat 3] [--json bench/results/flowio_profile.json]

The profile behind bench/flowio_bench.py's "conversion / decode bound" ratios. On the same generated JPEGs
(320x240, as there), medians of ``--repeat`` interleaved runs:

* the phases of ``flowio.convert`` in this process, timed from its own steps: start (Python, imports: a
  separate ``python -c "import flowio.convert"``), scan, check (the worker pool decoding and framing every file),
  write (copying the spooled records into the shards) and the rest (lock, manifest, renames);
* the check phase's images/s against Pillow's decode bound, which is what the workers can scale;
* one worker's per-image work, split: reading the file, Pillow's decode (the bound's own work), the structure
  check of a kept JPEG, building and framing the record, appending it to the spool.
"""

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from flowio_bench import decode_bound, make_images  # noqa: E402



convert_module = importlib.import_module("flowio.convert")  # the module (flowio.convert is also its function)
from flowio import images as images_module  # noqa: E402
from flowio.records import example_bytes, frame  # noqa: E402


class Phases:
    """Wraps ``flowio.convert``'s steps to time them: scan, check (the pool's generator), write (_prepare less check)."""

    def __init__(self):
        self.times = {}
        self._scan, self._checked, self._prepare = convert_module.scan, convert_module._checked_records, convert_module._prepare

    def _timed(self, key, function):
        def timed(*a, **k):
            start = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                self.times[key] = time.perf_counter() - start
        return timed

    def __enter__(self):
        def checked(*a, **k):  # its caller zips it with the file list, so it is never run to its end
            start = time.perf_counter()
            for result in self._checked(*a, **k):
                self.times["check"] = time.perf_counter() - start
                yield result

        convert_module.scan, convert_module._checked_records, convert_module._prepare = (
            self._timed("scan", self._scan), checked, self._timed("prepare", self._prepare))
        return self

    def __exit__(self, *exc):
        convert_module.scan, convert_module._checked_records, convert_module._prepare = (
            self._scan, self._checked, self._prepare)


def phases(root, out, workers):
    with Phases() as p:
        start = time.perf_counter()
        convert_module.convert(root, out, workers=workers, overwrite=True, progress=False)
        total = time.perf_counter() - start
    t = p.times
    return {"scan": t["scan"], "check": t["check"], "write": t["prepare"] - t["check"],
            "rest": total - t["scan"] - t["prepare"], "in_process": total}


def start_cost():
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import flowio.convert"], cwd=REPO, check=True)
    return time.perf_counter() - start


def per_image(root, count=500):
    """Seconds per image of each part of one worker's work (``flowio.convert._encode``), in this process."""
    files = sorted(Path(root).rglob("*.jpg"))[:count]
    parts = dict.fromkeys(("read", "decode (Pillow, the bound)", "check kept JPEG's structure",
                           "record: build + CRC", "spool append"), 0.0)
    with tempfile.TemporaryFile() as spool:
        for path in files:
            t0 = time.perf_counter()
            data = path.read_bytes()
            t1 = time.perf_counter()
            img = images_module._open(data)
            img.convert("RGB")
            t2 = time.perf_counter()
            images_module._keeps_original(data, img)
            t3 = time.perf_counter()
            record = frame(example_bytes({"image/encoded": data, "image/format": "jpeg", "image/class/label": 1,
                                          "image/class/text": "c", "image/height": img.height,
                                          "image/width": img.width, "image/channels": 3,
                                          "image/filename": path.name}))
            t4 = time.perf_counter()
            spool.write(record)
            t5 = time.perf_counter()
            for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                parts[key] += dt
    return {k: v / len(files) for k, v in parts.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=3000, help="generated JPEGs (320x240)")
    p.add_argument("--repeat", type=int, default=3, help="interleaved repeats (medians are shown)")
    p.add_argument("--json", default=str(REPO / "bench/results/flowio_profile.json"), help="where to write the figures")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_images(tmp / "photos", args.images, (320, 240))
        runs = [(decode_bound(tmp / "photos"), start_cost(), phases(tmp / "photos", tmp / "o1", 1),
                 phases(tmp / "photos", tmp / "o2", 2)) for _ in range(args.repeat)]
        parts = per_image(tmp / "photos")
    bound = statistics.median(r[0] for r in runs)
    start = statistics.median(r[1] for r in runs)
    result = {"images": args.images, "decode_bound_img_s": bound, "start_s": start, "per_image_ms": {}}
    print(f"flowio profile: {args.images} JPEGs 320x240, {os.cpu_count()} cores, medians of {args.repeat}")
    print(f"  Pillow decode bound: {bound:.0f} img/s = {args.images / bound:.2f} s for the folder")
    print(f"  {'phase (s)':<28} {'1 worker':>9} {'2 workers':>10}")
    for i, workers in ((2, 1), (3, 2)):
        ph = {k: statistics.median(r[i][k] for r in runs) for k in runs[0][i]}
        ph["start"] = start
        ph["total"] = ph["in_process"] + start
        result[f"phases_{workers}"] = ph
    for key in ("start", "scan", "check", "write", "rest", "total"):
        print(f"  {key:<28} {result['phases_1'][key]:9.2f} {result['phases_2'][key]:10.2f}")
    for workers in (1, 2):
        ph = result[f"phases_{workers}"]
        result[f"check_vs_bound_{workers}"] = args.images / ph["check"] / bound
        result[f"total_vs_bound_{workers}"] = args.images / ph["total"] / bound
        print(f"  {workers} worker(s): check phase {result[f'check_vs_bound_{workers}']:.2f}x the bound,"
              f" whole run {result[f'total_vs_bound_{workers}']:.2f}x;"
              f" the fixed part (start, scan, write, rest) is"
              f" {100 * (ph['total'] - ph['check']) / ph['total']:.0f}% of the run")
    print("  one worker's work per image (ms):")
    for key, seconds in parts.items():
        result["per_image_ms"][key] = 1000 * seconds
        print(f"    {key:<36} {1000 * seconds:7.3f}")
    extra = sum(parts.values()) - parts["decode (Pillow, the bound)"]
    print(f"    {'all but the decode':<36} {1000 * extra:7.3f}"
          f"  ({100 * extra / parts['decode (Pillow, the bound)']:.0f}% on top of the bound's work)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"  -> {args.json}")


if __name__ == "__main__":
    main()
