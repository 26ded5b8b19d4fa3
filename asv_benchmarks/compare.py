"""Side-by-side speed of fastmlp, scikit-learn and PyTorch on the design's reference problem.

784 dense inputs, one hidden layer of 128 ReLU units, 10 softmax outputs, one
epoch, run in one process with the same thread count; prints medians of
``--repeats`` runs and the ratios the README quotes, then the peak memory of
one fit of fastmlp and scikit-learn on the same ``--memory-samples`` rows
(Python-visible allocations, traced with ``tracemalloc``: NumPy arrays and
Python objects; the kernels allocate nothing large of their own).

    python asv_benchmarks/compare.py [--samples 5000] [--repeats 3]

With ``--load`` it times instead each configuration of the load benchmark
(``benchmarks/common.py: load_config``) quiet, then with one and with two
CPU-bound processes beside it: fastmlp (its default threads), fastmlp on one
thread (``FASTMLP_THREADS=0``) and scikit-learn, in interleaved rounds, and
prints the medians with the ranges over rounds and the ratios under each load.

    python asv_benchmarks/compare.py --load [--repeats 3] [--configs sgd_1,sgd_32]

With ``--wide-sparse`` it times SGD with scikit-learn's defaults on CSR rows
of 50 non-zeros (64 hidden units, 5 classes) as the number of columns grows
from 10^3 to 10^6: samples/s of one ``partial_fit`` epoch, fastmlp in float64
and float32 beside scikit-learn (on a subsample: it touches every weight at
every step), in interleaved rounds; medians with the ranges over rounds.

    python asv_benchmarks/compare.py --wide-sparse [--repeats 3]
"""

import argparse
import os
import platform
import time
import tracemalloc
import warnings

import numba
import numpy as np

# the asv suite's helpers: this script's directory (asv_benchmarks/) is on
# sys.path when it runs, as for every script
from benchmarks.common import (
    LIBRARIES,
    LOAD_CONFIGS,
    TorchMLP,
    rates_side_by_side,
    torch_available,
    warm_up,
    wide_sparse_data,
    wide_sparse_rate,
)


def throughput(make, X, y, repeats):
    # a BLAS pool that has just run (the previous library's) spins on a core
    # for about 0.1 s: start on a settled process
    time.sleep(0.3)
    warm_up(make().fit, X[:50], y[:50])  # warm-up / JIT, threaded kernels included
    times = []
    for _ in range(repeats):
        est = make()
        start = time.perf_counter()
        est.fit(X, y)
        times.append(time.perf_counter() - start)
    return X.shape[0] / float(np.median(times))


def epoch_rate(make, X, y, repeats):
    """Median samples/s of the training epochs alone (no validation or setup), as
    fastmlp's per-epoch callback reports them: ``repeats`` fits of 3 epochs."""
    rates = []

    def record(estimator, info):
        rates.append(info["samples_per_s"])

    for _ in range(repeats):
        make(callbacks=[record], max_iter=3).fit(X, y)
    return float(np.median(rates))


def peak_mib(action):
    """Peak traced memory of ``action()``, in MiB."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def refit_memory(n_features=2000, n_hidden=2000, n_rows=256):
    """Peak memory of what a fitted model goes through again: a refit, a
    ``warm_start`` fit and a ``partial_fit``, fastmlp beside scikit-learn, on
    a model whose weights (Adam: plus two moment arrays) dominate memory."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastmlp import MLPClassifier

    rng = np.random.RandomState(0)
    X = rng.rand(n_rows, n_features)
    y = rng.randint(0, 10, n_rows)
    weights_mib = (n_features * n_hidden + n_hidden * 10) * 8 / 2**20
    print(
        f"peak memory of a fitted model's next fit ({n_features}-{n_hidden}-10, Adam, "
        f"{weights_mib:.0f} MiB of weights, {n_rows} rows; tracemalloc):\n"
    )
    print("| what | fastmlp MiB | scikit-learn MiB | fastmlp / scikit-learn |")
    print("| --- | ---: | ---: | ---: |")
    settings = dict(hidden_layer_sizes=(n_hidden,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPClassifier(**settings).fit(X[:20], y[:20])  # compile outside the trace
        cases = {
            "refit (fit again)": lambda m: m.fit(X, y),
            "warm_start fit": lambda m: m.set_params(warm_start=True).fit(X, y),
            "partial_fit": lambda m: m.partial_fit(X, y),
        }
        for name, step in cases.items():
            peaks = []
            for Estimator in (MLPClassifier, SkMLP):
                model = Estimator(**settings).fit(X, y)
                peaks.append(peak_mib(lambda: step(model)))
            print(f"| {name} | {peaks[0]:.0f} | {peaks[1]:.0f} | {peaks[0] / peaks[1]:.2f} |")


def peak_fit_mib(make, X, y):
    """Peak traced memory of one ``make().fit(X, y)``, in MiB (after a warm-up fit)."""
    make().fit(X[:50], y[:50])
    est = make()
    tracemalloc.start()
    try:
        est.fit(X, y)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument(
        "--sklearn-per-sample",
        type=int,
        default=1000,
        help="rows for scikit-learn's slow batch_size=1 runs",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--memory-samples",
        type=int,
        default=2000,
        help="rows for the peak-memory comparison (same for both)",
    )
    parser.add_argument(
        "--load",
        action="store_true",
        help="time quiet and beside 1 and 2 CPU-bound processes instead",
    )
    parser.add_argument(
        "--refit-memory",
        action="store_true",
        help="peak memory of a fitted model's refit, warm_start fit and partial_fit instead",
    )
    parser.add_argument(
        "--wide-sparse",
        action="store_true",
        help="SGD on CSR input from 10^3 to 10^6 columns instead",
    )
    parser.add_argument(
        "--configs",
        default=",".join(LOAD_CONFIGS),
        help="with --load: comma-separated configurations",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.load:
        return under_load(args.configs.split(","), args.repeats)
    if args.refit_memory:
        return refit_memory()
    if args.wide_sparse:
        return wide_sparse(args.repeats)
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastmlp import MLPClassifier

    rng = np.random.RandomState(0)
    X64 = rng.rand(args.samples, 784)
    y = rng.randint(0, 10, args.samples)
    threads = numba.config.NUMBA_NUM_THREADS
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"threads: {threads}; samples: {args.samples}; median of {args.repeats}"
    )
    has_torch = torch_available()
    if has_torch:
        import torch

        torch.set_num_threads(threads)
    print(
        "\n| config | dtype | fastmlp samples/s | scikit-learn | PyTorch | vs sklearn | vs torch |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for bs in (1, 32, 200):
        for dtype in ("float64", "float32"):
            X = X64.astype(dtype)
            kw = dict(
                hidden_layer_sizes=(128,),
                solver="sgd",
                batch_size=bs,
                max_iter=1,
                learning_rate_init=0.001,
                random_state=0,
            )
            ours = throughput(lambda: MLPClassifier(**kw), X, y, args.repeats)
            n_sk = args.sklearn_per_sample if bs == 1 else args.samples
            sk = throughput(lambda: SkMLP(**kw), X[:n_sk], y[:n_sk], args.repeats)
            if has_torch:
                n_t = min(args.samples, 3000) if bs == 1 else args.samples
                th = throughput(
                    lambda: TorchMLP((128,), "sgd", bs, 0.001, dtype),
                    X[:n_t],
                    y[:n_t],
                    args.repeats,
                )
                th_s, ratio_t = f"{th:,.0f}", f"{ours / th:.1f}x"
            else:
                th_s = ratio_t = "n/a"
            print(
                f"| sgd, batch {bs} | {dtype} | {ours:,.0f} | {sk:,.0f} | {th_s} | "
                f"{ours / sk:.1f}x | {ratio_t} |"
            )
    print(
        "\nfastmlp per-sample SGD, the epoch alone (whole fit above; median of "
        f"{3 * args.repeats} epochs):"
    )
    for dtype in ("float64", "float32"):
        kw = dict(
            hidden_layer_sizes=(128,),
            solver="sgd",
            batch_size=1,
            tol=0.0,
            learning_rate_init=0.001,
            random_state=0,
        )
        rate = epoch_rate(
            lambda **more: MLPClassifier(**kw, **more), X64.astype(dtype), y, args.repeats
        )
        print(f"  {dtype}: {rate:,.0f} samples/s")
    Xp = rng.rand(100_000, 784)
    kw = dict(hidden_layer_sizes=(128,), max_iter=1, random_state=0)
    ours = MLPClassifier(**kw).fit(X64[:2000], y[:2000])
    theirs = SkMLP(**kw).fit(X64[:2000], y[:2000])
    warm_up(ours.predict, Xp)  # the threaded predict too
    tp = [np.median([_t(m.predict, Xp) for _ in range(args.repeats)]) for m in (ours, theirs)]
    print(
        f"\npredict 100k rows: fastmlp {1e5 / tp[0]:,.0f} rows/s, scikit-learn "
        f"{1e5 / tp[1]:,.0f} rows/s ({tp[1] / tp[0]:.2f}x)"
    )
    n_mem = min(args.memory_samples, args.samples)
    print(f"\nfit peak memory, {n_mem} rows (tracemalloc):\n")
    print("| config | dtype | fastmlp MiB | scikit-learn MiB | fastmlp / scikit-learn |")
    print("| --- | --- | ---: | ---: | ---: |")
    for bs in (1, 32, 200):
        for dtype in ("float64", "float32"):
            X = X64[:n_mem].astype(dtype)
            kw = dict(
                hidden_layer_sizes=(128,),
                solver="sgd",
                batch_size=bs,
                max_iter=1,
                learning_rate_init=0.001,
                random_state=0,
            )
            ours = peak_fit_mib(lambda: MLPClassifier(**kw), X, y[:n_mem])
            sk = peak_fit_mib(lambda: SkMLP(**kw), X, y[:n_mem])
            print(f"| sgd, batch {bs} | {dtype} | {ours:.1f} | {sk:.1f} | {ours / sk:.2f} |")


def wide_sparse(rounds, widths=(1_000, 10_000, 100_000, 1_000_000), n_rows=20_000):
    """The wide sparse table: samples/s of a ``partial_fit`` epoch per width and
    batch size, fastmlp (float64, float32) and scikit-learn, each configuration
    timed once per round, rounds interleaved."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastmlp import MLPClassifier

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{rounds} interleaved rounds; load average before: {os.getloadavg()[0]:.2f}\n"
        f"CSR, 50 non-zeros per row, 64 hidden units, 5 classes, SGD with scikit-learn's "
        f"defaults; fastmlp on {n_rows:,} rows, scikit-learn on 2,000,000 / n_features rows"
    )
    classes = np.arange(5)
    data = {n: wide_sparse_data(n_rows, n) for n in widths}
    cases = [(n, bs) for n in widths for bs in (1, 32)]
    rates = {case: {"float64": [], "float32": [], "sklearn": []} for case in cases}
    for _ in range(rounds):
        for n, bs in cases:
            X, y = data[n]
            settings = dict(solver="sgd", hidden_layer_sizes=(64,), batch_size=bs, random_state=0)
            for dtype in ("float64", "float32"):
                model = MLPClassifier(dtype=dtype, **settings)
                rates[n, bs][dtype].append(wide_sparse_rate(model, X, y, classes))
            if n < 1_000_000:
                n_sk = max(2 * bs, 2_000_000 // n)
                rates[n, bs]["sklearn"].append(
                    wide_sparse_rate(SkMLP(**settings), X[:n_sk], y[:n_sk], classes)
                )
    print(
        "\n| n_features | batch | fastmlp float64 | vs 10^3 | fastmlp float32 | "
        "scikit-learn | fastmlp / scikit-learn |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def cell(values):
        return f"{np.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"

    for n, bs in cases:
        r = rates[n, bs]
        ours = np.median(r["float64"])
        flat = ours / np.median(rates[widths[0], bs]["float64"])
        sk = cell(r["sklearn"]) if r["sklearn"] else "n/a"
        ratio = f"{ours / np.median(r['sklearn']):,.0f}x" if r["sklearn"] else "n/a"
        print(
            f"| {n:,} | {bs} | {cell(r['float64'])} | {flat:.2f} | {cell(r['float32'])} | "
            f"{sk} | {ratio} |",
            flush=True,
        )


def under_load(configs, rounds):
    """The load table: per configuration and number of busy processes, each library's
    median samples/s (range over rounds) and fastmlp's ratios under the same load."""
    import numba

    from fastmlp._threads import threads_usable

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"Numba threading layer: {numba.threading_layer() if threads_usable() else 'unused'},"
        f" {numba.config.NUMBA_NUM_THREADS} threads; {rounds} interleaved rounds; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    print(
        "\n| config | busy | fastmlp | fastmlp 1 thread | scikit-learn | "
        "fastmlp / 1 thread | fastmlp / scikit-learn |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in configs:
        for busy in (0, 1, 2):
            r = rates_side_by_side(name, busy, rounds)
            cells = " | ".join(
                f"{r[lib][0]:,.0f} ({r[lib][1]:,.0f}-{r[lib][2]:,.0f})" for lib in LIBRARIES
            )
            ours, one, sk = (r[lib][0] for lib in LIBRARIES)
            print(
                f"| {name} | {busy} | {cells} | {ours / one:.2f} | {ours / sk:.1f}x |", flush=True
            )


def _t(f, X):
    start = time.perf_counter()
    f(X)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
