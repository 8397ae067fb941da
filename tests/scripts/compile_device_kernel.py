"""Compile the Triton kernel of ``rsgt_fast._gpu`` for NVIDIA GPUs, without a GPU.

Usage: ``python compile_device_kernel.py SPECS.json ARCH [ARCH ...]``

SPECS.json holds a list of launches, each ``[signature, constexprs, options]``
as recorded from real calls (argument name to Triton type string, e.g.
``"*i16"`` or ``"i32"``).  Every launch is compiled to PTX and a cubin for
each compute capability ARCH (80 for A100, 90 for H100...) with Triton's own
compiler, which is stricter than its interpreter: a kernel that runs in the
interpreter can still fail to compile.  Prints one line per failure and a
last line ``compiled N``; exits with status 1 if anything failed.
"""

import json
import sys
import warnings

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from rsgt_fast import _gpu


def main():
    with open(sys.argv[1]) as handle:
        specs = json.load(handle)
    archs = [int(arch) for arch in sys.argv[2:]]
    compiled, failed = 0, []
    for signature, constexprs, options in specs:
        signature = {**signature, **{name: "constexpr" for name in constexprs}}
        for arch in archs:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # a warning at compile time is a failure
                    kernel = triton.compile(
                        ASTSource(_gpu._map_voxels, signature, constexprs=constexprs),
                        target=GPUTarget("cuda", arch, 32), options=options)
                assert kernel.asm["cubin"], "no cubin"
                compiled += 1
            except Exception as exc:  # report every failure, not only the first
                failed.append(f"sm_{arch} {signature} {constexprs}: {type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[-1]}")
    for line in failed:
        print(line)
    print(f"compiled {compiled}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
