"""CPU feature detection from /proc/cpuinfo texts."""

from __future__ import annotations

from synboost_ros.cpu_features import native_bf16, parse_cpu_flags

X86_ICE_LAKE = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni
processor\t: 1
flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni
"""
X86_ZEN4 = "processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 avx512_vnni\n"
X86_SAPPHIRE_RAPIDS = "flags\t\t: avx512f amx_bf16 amx_tile amx_int8\n"
ARM_GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\nCPU implementer\t: 0x41\n"
ARM_GRAVITON2 = "processor\t: 0\nFeatures\t: fp asimd atomics dotprod\n"


def test_flags_of_the_first_processor_are_read():
    assert parse_cpu_flags(X86_ICE_LAKE) == {
        "fpu",
        "sse2",
        "avx2",
        "avx512f",
        "avx512bw",
        "avx512_vnni",
    }
    assert "bf16" in parse_cpu_flags(ARM_GRAVITON3)
    assert parse_cpu_flags("model name\t: something\n") == frozenset()


def test_native_bf16_on_x86_and_arm():
    assert native_bf16(parse_cpu_flags(X86_ZEN4))
    assert native_bf16(parse_cpu_flags(X86_SAPPHIRE_RAPIDS))
    assert native_bf16(parse_cpu_flags(ARM_GRAVITON3))
    assert not native_bf16(parse_cpu_flags(X86_ICE_LAKE))  # avx512bw alone emulates bf16
    assert not native_bf16(parse_cpu_flags(ARM_GRAVITON2))
    assert not native_bf16(frozenset())
