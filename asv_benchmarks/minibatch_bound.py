"""How much faster than scikit-learn can a mini-batch epoch be on this machine?

The design's reference problem (784 dense inputs, 128 ReLU units, 10 outputs,
SGD with Nesterov momentum 0.9, one epoch of 5,000 rows) at batch 32 and 200.
Any implementation must, for every batch, gather its shuffled rows and run
the two big gemms (``Xb @ W0`` forward and ``Xb.T @ D0`` for the gradient),
then step every parameter (a memory-bound pass over the weights and their
velocities) before the next batch can start. This script times exactly that
work and nothing else: the small layers, activations, loss, intercepts and
the fit's input checks are counted as free. Each part is timed with BLAS or
Numba on one thread and on two, and the bound takes the best of the two-thread
time and half the one-thread time (perfect scaling over two cores, which no
real split reaches). Then it prints scikit-learn's whole one-epoch fit beside
it, and fastmlp's own epoch and fit for reference.

    python asv_benchmarks/minibatch_bound.py [--samples 5000] [--repeats 7]
"""

import argparse
import os
import platform
import time
import warnings

import numba
import numpy as np
from numba import prange
from threadpoolctl import threadpool_limits

N_IN, N_HIDDEN, N_OUT = 784, 128, 10
N_PARAMS = N_IN * N_HIDDEN + N_HIDDEN + N_HIDDEN * N_OUT + N_OUT


@numba.njit(parallel=True, fastmath=True, cache=True)
def nesterov_step(params, velocity, grads, lr, momentum):
    """scikit-learn's Nesterov momentum step (``SGDOptimizer``), in place."""
    for i in prange(params.shape[0]):
        v = momentum * velocity[i] - lr * grads[i]
        velocity[i] = v
        params[i] += momentum * v - lr * grads[i]


def median_seconds(run, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def gemm_epoch(X, W0, D0, G0, batch_size, order):
    """Every batch's row gather and its two big gemms (``D0`` stands in for the deltas)."""
    n = X.shape[0]
    for start in range(0, n, batch_size):
        rows = X[order[start : start + batch_size]]
        np.dot(rows, W0)
        np.dot(rows.T, D0[: rows.shape[0]], G0)


def update_epoch(params, velocity, grads, n, batch_size):
    for _ in range(0, n, batch_size):
        nesterov_step(params, velocity, grads, 1e-3, 0.9)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastmlp import MLPClassifier

    n = args.samples
    rng = np.random.RandomState(0)
    X64 = rng.rand(n, N_IN)
    y = rng.randint(0, N_OUT, n)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"samples: {n}; medians of {args.repeats}; times in ms per epoch"
    )
    print(
        "\n| batch | dtype | gather + gemms 1 / 2 threads | step 1 / 2 threads | bound | "
        "scikit-learn fit | best possible ratio | fastmlp epoch / fit | fastmlp ratio |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for batch_size in (32, 200):
        for dtype in ("float64", "float32"):
            X = X64.astype(dtype)
            W0 = rng.rand(N_IN, N_HIDDEN).astype(dtype)
            D0 = rng.rand(batch_size, N_HIDDEN).astype(dtype)
            G0 = np.empty((N_IN, N_HIDDEN), dtype)
            gemm = {}
            for threads in (1, 2):
                with threadpool_limits(threads):
                    gemm[threads] = median_seconds(
                        lambda: gemm_epoch(X, W0, D0, G0, batch_size, rng.permutation(n)),
                        args.repeats,
                    )
            params = np.zeros(N_PARAMS, dtype)
            velocity = np.zeros(N_PARAMS, dtype)
            grads = np.full(N_PARAMS, 1e-3, dtype)
            step = {}
            for threads in (1, 2):
                numba.set_num_threads(threads)
                update_epoch(params, velocity, grads, batch_size, batch_size)  # compile
                step[threads] = median_seconds(
                    lambda: update_epoch(params, velocity, grads, n, batch_size), args.repeats
                )
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
            bound = min(gemm[2], gemm[1] / 2) + min(step[2], step[1] / 2)

            kw = dict(
                hidden_layer_sizes=(N_HIDDEN,),
                solver="sgd",
                batch_size=batch_size,
                max_iter=1,
                learning_rate_init=0.001,
                random_state=0,
            )
            SkMLP(**kw).fit(X[:50], y[:50])
            sk = median_seconds(lambda: SkMLP(**kw).fit(X, y), max(3, args.repeats // 2))
            MLPClassifier(**kw).fit(X[:50], y[:50])
            epochs = []

            def record(estimator, info):
                epochs.append(n / info["samples_per_s"])

            ours = median_seconds(
                lambda: MLPClassifier(**kw, callbacks=[record]).fit(X, y), args.repeats
            )
            ms = 1e3
            print(
                f"| {batch_size} | {dtype} | {gemm[1] * ms:.1f} / {gemm[2] * ms:.1f} | "
                f"{step[1] * ms:.1f} / {step[2] * ms:.1f} | {bound * ms:.1f} | {sk * ms:.1f} | "
                f"{sk / bound:.2f}x | {np.median(epochs) * ms:.1f} / {ours * ms:.1f} | "
                f"{sk / ours:.2f}x |"
            )
    print(
        "\nbound: the best of two threads and perfect two-core scaling of the gather + "
        "gemms, plus that of the step; everything else counted as free. "
        "best possible ratio = scikit-learn fit / bound."
    )


if __name__ == "__main__":
    main()
