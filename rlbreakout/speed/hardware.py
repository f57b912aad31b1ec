"""Which precision the hardware can run: CPU flags, CUDA's bf16, and a switch to force it off.

Why its own module: the ``--fast`` levers (:mod:`rlbreakout.speed.fast`, :mod:`rlbreakout.speed.measure`), the from-scratch PPO
(2.4) and the benchmark (0.2) ask the same question, and tests need one place to force
the answer either way.

Environment variable ``RLBREAKOUT_FORCE_NO_BF16`` (set to anything but "" or "0"):
:func:`bf16_supported` answers False for every device in this process, as on a CPU
without AVX-512-BF16, e.g. to run the whole test suite down the fp32 branch.
"""

from __future__ import annotations

import os
import sys

import torch

from rlbreakout.errors import ConfigError

PRECISION_CHOICES: tuple[str, ...] = ("bf16", "fp32")
#: /proc/cpuinfo flags of x86 CPUs with native bf16 arithmetic (AVX-512-BF16, AMX).
CPU_BF16_FLAGS: frozenset[str] = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO_PATH = "/proc/cpuinfo"
FORCE_NO_BF16_ENV = "RLBREAKOUT_FORCE_NO_BF16"


def cpu_flags(path: str = CPUINFO_PATH) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty where it cannot be read."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def device_type(device: str | torch.device) -> str:
    """``"cpu"``, ``"cuda"``, ...: the kind of ``device``, ``"auto"`` meaning CUDA where there is one.

    A ``torch.device`` (what :func:`resolve_device` returns) is read, not resolved again.
    """
    if isinstance(device, torch.device):
        return device.type
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device).type


def resolve_device(device: str | torch.device) -> torch.device:
    """The ``torch.device`` that ``device`` names, ``"auto"`` meaning CUDA where there is one.

    Resolve once, where a call starts (:func:`rlbreakout.speed.fast.fast_settings`), and hand
    the result down: every function here then reads its ``type`` instead of asking torch again.
    """
    if isinstance(device, torch.device):
        return device
    return torch.device(device_type(device) if device == "auto" else device)


def bf16_forced_off() -> bool:
    """True when ``RLBREAKOUT_FORCE_NO_BF16`` is set (to anything but "" or "0")."""
    return os.environ.get(FORCE_NO_BF16_ENV, "") not in ("", "0")


#: Devices with a fused Adam kernel in torch >= 2.4 (one kernel per step instead of a dozen per tensor).
FUSED_ADAM_DEVICES: tuple[str, ...] = ("cpu", "cuda")
#: torch CPU kernel levels that have no bf16 instructions (``torch.backends.cpu.get_cpu_capability()``).
CAPABILITIES_WITHOUT_BF16: tuple[str, ...] = ("DEFAULT", "NO AVX", "AVX2", "ZVECTOR", "VSX")


def bf16_hardware(device: str | torch.device) -> bool:
    """True when ``device`` does bf16 arithmetic natively (not emulated, which is slower than fp32).

    CPU: the AVX-512-BF16 or AMX flag in /proc/cpuinfo (Linux), else torch's CPU
    capability string naming AMX; and torch's kernels must use them: with
    ``ATEN_CPU_CAPABILITY=avx2`` (how the tests imitate an AVX2-only CPU) bf16 is emulated
    and many times slower than fp32, so it does not count. CUDA:
    ``torch.cuda.is_bf16_supported()``. Others: False.
    """
    kind = device_type(device)
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind != "cpu":
        return False
    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    if capability in CAPABILITIES_WITHOUT_BF16:
        return False
    if cpu_flags() & CPU_BF16_FLAGS:
        return True
    return "AMX" in capability


def bf16_supported(device: str | torch.device) -> bool:
    """bf16 may be used on ``device``: the hardware has it and ``RLBREAKOUT_FORCE_NO_BF16`` is unset."""
    return not bf16_forced_off() and bf16_hardware(device)


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """``"bf16"`` or ``"fp32"``: what will really run on ``device``.

    Asking for bf16 on hardware without it prints one warning line and gives fp32,
    so a script never silently runs (slower) emulated bf16.
    """
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISION_CHOICES)}.")
    if precision == "bf16" and not bf16_supported(device):
        print(f"warning: precision bf16 needs a CPU with AVX-512-BF16/AMX or a bf16 CUDA GPU; "
              f"{device} has neither, so training runs in fp32.", file=sys.stderr, flush=True)
        return "fp32"
    return precision
