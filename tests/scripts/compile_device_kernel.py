"""Compile the Triton kernel of ``rsgt_fast._gpu`` for NVIDIA GPUs, without a GPU.

Usage: ``python compile_device_kernel.py SPECS.json ARCH [ARCH ...]``

SPECS.json holds a list of launches, each ``[kernel, signature, constexprs,
attrs, options]`` as recorded from real calls: the kernel's name in ``_gpu``,
argument name to Triton type string (e.g. ``"*i16"`` or ``"i32"``), the
constant arguments, and each specialised argument's attribute string (``"D"``:
divisible by 16, as a GPU launch specialises aligned pointers and integers).
Every launch is compiled to PTX and a cubin for
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
from triton.compiler.compiler import make_backend

from rsgt_fast import _gpu


def main():
    with open(sys.argv[1]) as handle:
        specs = json.load(handle)
    archs = [int(arch) for arch in sys.argv[2:]]
    compiled, failed = 0, []
    for name, signature, constexprs, attrs, options in specs:
        fn = getattr(_gpu, name)
        signature = {arg: signature.get(arg, "constexpr") for arg in fn.arg_names}
        for arch in archs:
            target = GPUTarget("cuda", arch, 32)
            backend = make_backend(target)
            parsed = {(fn.arg_names.index(arg),): backend.parse_attr(desc)
                      for arg, desc in attrs.items()}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # a warning at compile time is a failure
                    kernel = triton.compile(
                        ASTSource(fn, signature, constexprs=constexprs, attrs=parsed),
                        target=target, options=options)
                assert kernel.asm["cubin"], "no cubin"
                compiled += 1
            except Exception as exc:  # report every failure, not only the first
                failed.append(f"sm_{arch} {name} {signature} {constexprs} {attrs}: "
                              f"{type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[-1]}")
    for line in failed:
        print(line)
    print(f"compiled {compiled}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
