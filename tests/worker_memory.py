"""Peak resident memory of Dask workers, sampled in each worker while a job runs.

``client.run(start_sampler)`` starts a thread in every worker that samples its
RSS every 10 ms; ``client.run(stop_sampler)`` stops it and returns the peak.
The functions travel to the workers by value (this module is registered with
cloudpickle), so workers need not import it.
"""

import sys
import threading
import time

import cloudpickle
import psutil


def start_sampler():
    """In a worker: sample this process's RSS every 10 ms in a background thread."""
    import builtins

    process = psutil.Process()
    state = {"peak": process.memory_info().rss, "run": True}

    def sample():
        while state["run"]:
            state["peak"] = max(state["peak"], process.memory_info().rss)
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    builtins._rsgt_fast_rss = state  # the state outlives this call, for stop_sampler
    return state["peak"]


def stop_sampler():
    """In a worker: stop the sampler and return the peak RSS in bytes."""
    import builtins

    state = builtins._rsgt_fast_rss
    state["run"] = False
    return state["peak"]


cloudpickle.register_pickle_by_value(sys.modules[__name__])
