"""What this CPU computes natively, from the kernel's ``/proc/cpuinfo`` (plain Python).

bf16 counts as native where the CPU has bf16 dot-product or matrix instructions: x86
``avx512_bf16`` (AMD Zen 4 and later, Intel Cooper Lake, Sapphire Rapids and later) or
``amx_bf16`` (Intel AMX), Arm ``bf16`` (Armv8.6 BF16: Graviton 3, Neoverse V1/N2 and later).
Without them torch still runs bf16, emulated in fp32 units and slower than fp32.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
_FLAG_KEYS = ("flags", "features")  # x86, Arm


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first processor listed in a ``/proc/cpuinfo`` text."""
    for line in cpuinfo.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip().lower() in _FLAG_KEYS:
            return frozenset(value.split())
    return frozenset()


@cache
def cpu_flags() -> frozenset[str]:
    """This machine's CPU flags; empty where ``/proc/cpuinfo`` is missing (not Linux)."""
    try:
        return parse_cpu_flags(CPUINFO.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return frozenset()


def native_bf16(flags: Collection[str] | None = None) -> bool:
    """Whether a CPU with ``flags`` (default: this one) has bf16 arithmetic instructions."""
    return not BF16_FLAGS.isdisjoint(cpu_flags() if flags is None else flags)
