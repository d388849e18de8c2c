"""Which CPU kernels TensorFlow runs in a process, oneDNN's or Eigen's: chosen once, before TensorFlow is imported.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, at its import (``IsMklEnabled``, tensorflow/core/util/util.cc).
Unset, its Linux policy (``DefaultOneDnnPolicy``) switches oneDNN on only where the CPU has AVX512_VNNI,
AVX512_BF16, AVX_VNNI or AMX (``TENSORFLOW_DEFAULT`` below): on AVX2-only CPUs (Intel up to Comet Lake, AMD Zen 1-3)
and AVX-512 ones without VNNI (Skylake-SP) it runs Eigen's kernels, whose convolution gradients train 1.1-2.6x
slower than oneDNN's at the same instructions, while both infer within 0.6-1.3x of each other (bench/kernels_bench.py;
DESIGN §8 has the figures).

``choose(purpose)`` decides for the process from the CPU's flags, read from ``/proc/cpuinfo`` by
``cpu_flags()`` (the one function the tests replace):

* ``train`` (train.py, whose validation, precise BN and end-of-run export run in the same process, on the same
  kernels): oneDNN wherever the CPU has AVX2;
* ``predict`` (evaluate, use_model, export): TensorFlow's own policy (``PREDICT`` says why);
* ``bfloat16`` (train.py ``--precision mixed_bfloat16``): oneDNN always, whose rewrite and kernels are the only
  bfloat16 ones on a CPU.

Where the decision differs from TensorFlow's policy it sets ``TF_ENABLE_ONEDNN_OPTS``, and ``say(command)`` says so
in one line on stderr, naming the opt-out, once the command's checks are done. The caller's ``TF_ENABLE_ONEDNN_OPTS`` always wins, and nothing is said then. Off Linux
x86-64 TensorFlow's default stays. ``ONEDNN_MAX_CPU_ISA`` caps the instructions oneDNN uses (it emulates an older
CPU: ``AVX2``); the choice reads the flags under that cap too, while TensorFlow's policy reads the CPU as it is.
``record()`` is what run.json keeps (``kernels``), once TensorFlow is imported. It imports nothing of TensorFlow
until then.
"""

import os
import platform
import sys
from dataclasses import dataclass

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
OPT_OUT = f"{VARIABLE}=0"
PURPOSES = ("train", "predict", "bfloat16")

# DefaultOneDnnPolicy's CPU features on Linux, as /proc/cpuinfo spells them
TENSORFLOW_DEFAULT = frozenset({"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"})
AVX2 = frozenset({"avx2", "fma"})
AVX512_CORE = frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq"})
# ONEDNN_MAX_CPU_ISA -> the flags a CPU keeps under it (oneDNN's cpu_isa_t: avx512_core holds avx2 but not
# avx2_vnni); a value not here leaves the flags as they are, as oneDNN ignores it
_UNDER_CAP = {
    "SSE41": frozenset({"sse4_1"}),
    "AVX": frozenset({"sse4_1", "avx"}),
    "AVX2": frozenset({"sse4_1", "avx"}) | AVX2,
    "AVX2_VNNI": frozenset({"sse4_1", "avx", "avx_vnni"}) | AVX2,
    "AVX512_CORE": frozenset({"sse4_1", "avx"}) | AVX2 | AVX512_CORE,
    "AVX512_CORE_VNNI": frozenset({"sse4_1", "avx", "avx512_vnni"}) | AVX2 | AVX512_CORE,
    "AVX512_CORE_BF16": frozenset({"sse4_1", "avx", "avx512_vnni", "avx512_bf16"}) | AVX2 | AVX512_CORE,
}
_UNDER_CAP["AVX2_VNNI_2"] = _UNDER_CAP["AVX2_VNNI"]

# Why prediction keeps TensorFlow's policy (bench/kernels_bench.py, DESIGN §8): neither set infers faster on every
# class and size (oneDNN / Eigen 0.59-1.29x, Eigen ahead at 32x32, even at 96x96), and a prediction command's time
# is mostly TensorFlow's import
PREDICT = "prediction takes TensorFlow's own policy for such a CPU"


def cpu_flags():
    """The CPU's feature flags (``/proc/cpuinfo``'s first ``flags`` line), or None off Linux x86-64."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def capped(flags, cap):
    """``flags`` as oneDNN sees them under ``ONEDNN_MAX_CPU_ISA=cap`` (None or unknown: all of them)."""
    keep = _UNDER_CAP.get((cap or "").upper())
    return flags if keep is None else flags & keep


def isa(flags):
    """The class of CPU the flags describe, in oneDNN's names, as the choice and its line tell them apart."""
    if flags >= {"amx_tile", "amx_int8", "amx_bf16"}:
        return "AVX512_CORE_AMX"
    if flags >= AVX512_CORE:
        return "AVX512_CORE_BF16" if "avx512_bf16" in flags else (
            "AVX512_CORE_VNNI" if "avx512_vnni" in flags else "AVX512_CORE")
    if flags >= AVX2:
        return "AVX2_VNNI" if "avx_vnni" in flags else "AVX2"
    return "older than AVX2"


@dataclass(frozen=True)
class Kernels:
    """What ``choose`` decided: ``onednn`` True / False, or None where it cannot tell (off Linux x86-64, or
    TensorFlow imported before the choice); ``asked`` the caller's own ``TF_ENABLE_ONEDNN_OPTS``; ``why`` in words;
    ``changed``: set here, against TensorFlow's default."""
    purpose: str
    onednn: bool | None
    why: str
    isa: str | None = None
    asked: str | None = None
    changed: bool = False


def decide(purpose, flags, cap=None, asked=None):
    """The choice for ``purpose`` on a CPU with ``flags`` (None: not Linux x86-64) under ``ONEDNN_MAX_CPU_ISA=cap``,
    with the caller's ``TF_ENABLE_ONEDNN_OPTS`` (None: unset). Pure: ``choose`` applies it."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose {purpose!r}: one of {PURPOSES}")
    seen = None if flags is None else capped(flags, cap)
    kind = None if flags is None else isa(seen) + (
        f" (ONEDNN_MAX_CPU_ISA={cap})" if isa(seen) != isa(flags) else "")
    default = None if flags is None else bool(flags & TENSORFLOW_DEFAULT)  # TensorFlow reads the CPU as it is
    if asked is not None:
        # as TensorFlow's ReadBoolFromEnvVar reads it (lower-cased, not stripped); another value leaves its policy
        on = {"0": False, "false": False, "1": True, "true": True}.get(asked.lower(), default)
        return Kernels(purpose, on, f"{VARIABLE}={asked} in the environment", kind, asked=asked)
    if flags is None:
        return Kernels(purpose, None, "TensorFlow's default (not Linux x86-64)")
    if purpose == "bfloat16":
        on, why = True, "bfloat16 on a CPU is oneDNN's"
    elif purpose == "train" and seen >= AVX2:
        on, why = True, "they train 1.1-2.6x faster than Eigen's from AVX2 up"
    elif purpose == "train":
        on, why = bool(seen & TENSORFLOW_DEFAULT), "TensorFlow's policy: no AVX2"
    else:  # TensorFlow's policy for the CPU oneDNN sees (under a cap, the emulated one's)
        on, why = bool(seen & TENSORFLOW_DEFAULT), PREDICT
    return Kernels(purpose, on, why, kind, changed=on != default)


def for_this_process(purpose):
    """``decide`` on this CPU with this environment's ``ONEDNN_MAX_CPU_ISA`` and ``TF_ENABLE_ONEDNN_OPTS``, applying
    nothing (tests/conftest.py applies it to the suite's processes)."""
    return decide(purpose, cpu_flags(), os.environ.get("ONEDNN_MAX_CPU_ISA"), os.environ.get(VARIABLE))


def describe(kernels):
    """The one line a command prints when it changed TensorFlow's default."""
    state, default, keep = ("on", "off", OPT_OUT) if kernels.onednn else ("off", "on", f"{VARIABLE}=1")
    return (f"oneDNN's kernels switched {state} for this {kernels.isa} CPU (TensorFlow leaves them {default} here):"
            f" {kernels.why}; {keep} keeps TensorFlow's default")


_CHOSEN, _SAID = [], []  # this process's choice (TensorFlow reads it once), and whether it was said


def choose(purpose):
    """Decide the kernels of this process for ``purpose`` before TensorFlow is imported, setting
    ``TF_ENABLE_ONEDNN_OPTS`` where the decision changes TensorFlow's default. A second call returns the first
    decision; one after TensorFlow's import changes nothing and records that (``onednn`` None)."""
    if _CHOSEN:
        return _CHOSEN[0]
    if "tensorflow" in sys.modules:  # too late to change: what the process already runs
        kernels = Kernels(purpose, None, "TensorFlow was imported before the choice", asked=os.environ.get(VARIABLE))
    else:
        kernels = for_this_process(purpose)
        if kernels.changed:
            os.environ[VARIABLE] = "1" if kernels.onednn else "0"
    _CHOSEN.append(kernels)
    return kernels


def say(command):
    """The one line on stderr where this process's choice changed TensorFlow's default, once: a command calls it
    when its checks are done and its work starts (train.py: with the run folder open), so that a user error before
    that stays the only line."""
    if _CHOSEN and _CHOSEN[0].changed and not _SAID:
        _SAID.append(command)
        print(f"{command}: {describe(_CHOSEN[0])}", file=sys.stderr, flush=True)


def onednn_enabled():
    """Whether oneDNN runs in this process, as TensorFlow decided at its import (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port
    return bool(_pywrap_util_port.IsMklEnabled())


def record():
    """run.json's ``kernels``: what was asked (the caller's variable, or None), what the choice was and why, and
    what TensorFlow runs (``onednn``); after ``choose``."""
    kernels = _CHOSEN[0]
    return {"asked": kernels.asked, "chosen": {True: "oneDNN", False: "Eigen", None: "TensorFlow's default"}[
        kernels.onednn], "why": kernels.why, "isa": kernels.isa, "onednn": onednn_enabled()}
