"""Speed on a busy machine: each configuration quiet, then with one and two
CPU-bound processes beside it, for fastmlp (its default threads), fastmlp on
one thread (``FASTMLP_THREADS=0``) and scikit-learn, timed side by side.

The design's promise: with other processes on the cores, fastmlp slows down
no more than its one-thread kernel does, and never falls below scikit-learn
under the same load. ``track_vs_one_thread`` (fastmlp / its one-thread self,
>= 1 is kept) and ``track_vs_sklearn`` state it as ratios measured in one run.
"""

from .common import LOAD_CONFIGS, PROFILE, rates_side_by_side

FAST = PROFILE == "fast"


CONFIGS = list(LOAD_CONFIGS) if not FAST else ["default-digits", "sgd_1", "sgd_32"]
BUSY = ["0", "1", "2"]


class UnderLoad:
    """samples/s (predict: rows/s) of one configuration with ``busy`` CPU-bound
    processes beside it; medians of interleaved rounds. The whole grid is
    measured once, in ``setup_cache``, so that every figure of a cell comes
    from the same rounds."""

    params = (CONFIGS, BUSY)
    param_names = ["config", "busy"]
    timeout = 1800
    number = 1
    repeat = 1
    warmup_time = 0

    def setup_cache(self):
        rounds = 1 if FAST else 3
        return {
            (config, busy): rates_side_by_side(config, int(busy), rounds)
            for config in CONFIGS
            for busy in BUSY
        }

    def track_fastmlp(self, rates, config, busy):
        return rates[config, busy]["fastmlp"][0]

    def track_one_thread(self, rates, config, busy):
        return rates[config, busy]["fastmlp-1-thread"][0]

    def track_sklearn(self, rates, config, busy):
        return rates[config, busy]["scikit-learn"][0]

    def track_vs_one_thread(self, rates, config, busy):
        cell = rates[config, busy]
        return cell["fastmlp"][0] / cell["fastmlp-1-thread"][0]

    def track_vs_sklearn(self, rates, config, busy):
        cell = rates[config, busy]
        return cell["fastmlp"][0] / cell["scikit-learn"][0]

    track_fastmlp.unit = track_one_thread.unit = track_sklearn.unit = "samples/s"
    track_vs_one_thread.unit = track_vs_sklearn.unit = "ratio"
