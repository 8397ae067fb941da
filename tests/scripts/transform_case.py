"""Run one ``transform_batch`` call in a process of its own.

Usage: ``python transform_case.py IN.npy OUT.npz SEED DTYPE``

Loads the batch from IN.npy, runs ``transform_batch(x, rng=SEED, dtype=DTYPE,
return_curves=True)`` and saves the output and the curve parameters to
OUT.npz, together with the text of every warning raised during the call.
Used for inputs that might crash the interpreter, so that a crash fails one
test instead of the whole session.
"""

import sys
import warnings

import numpy as np

import rsgt_fast


def main():
    in_path, out_path, seed, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    x = np.load(in_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, curves = rsgt_fast.transform_batch(x, rng=seed, dtype=dtype, return_curves=True)
    np.savez(
        out_path,
        out=out,
        frequencies=curves.frequencies,
        amplitudes=curves.amplitudes,
        offsets=curves.offsets,
        extrema=curves.extrema,
        warnings=np.array([f"{w.category.__name__}: {w.message}" for w in caught], dtype=str),
    )


if __name__ == "__main__":
    main()
