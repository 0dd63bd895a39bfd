"""Where a sweep's batches run: in this process (`serial`), a forked process pool (`local`), or a
Dask cluster (`dask:tcp://HOST:PORT`); all take batches and hand back one record per point."""

from __future__ import annotations

import os
import time
from typing import Iterator

from analysis.sweep_spec import ResolvedSweep, dask_address
from analysis.sweep_worker import _pool_eval, _pool_init, _pool_ping, evaluate_batch
from simulator.errors import SparsimInputError

class SerialExecutor:
    name = "serial"
    jobs = 1

    def __init__(self, ctx):
        self.ctx = ctx

    def run(self, batches: list) -> Iterator[tuple[list, list[dict]]]:
        for b in batches:
            for item in b:  # in-process: every point is stored the moment it finishes
                yield [item], evaluate_batch(self.ctx, [item])

    def salvage(self, timeout_s: float = 30.0) -> list[list[dict]]:
        return []  # an interrupted in-process point has no result

    def close(self):
        pass


class LocalExecutor:
    """A process pool; forked workers start with the simulator imported and warm."""
    name = "local"

    def __init__(self, ctx, jobs: int):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        self.jobs = jobs
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        context = mp.get_context(method)
        self.queue = context.Queue()  # finished points, one at a time, as workers finish them
        self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                        initializer=_pool_init, initargs=(ctx, os.getpid(), self.queue))
        list(self.pool.map(_pool_ping, range(jobs)))  # start every worker now, before any progress thread

    def run(self, batches):
        """Yield ([point], [record]) for every point as soon as a worker finishes it (so the driver
        commits each point on its own); a batch lost with its worker yields its unfinished points
        as crashed."""
        import queue as queue_mod
        futures = self._futures = {self.pool.submit(_pool_eval, b): b for b in batches}
        items = {k: (k, v) for b in batches for k, v in b}
        seen: set[str] = set()
        pending = set(futures)
        try:
            while pending or len(seen) < len(items):
                try:
                    rec = self.queue.get(timeout=0.05)
                    if rec["key"] in items and rec["key"] not in seen:  # (not a late message of an earlier run)
                        seen.add(rec["key"])
                        yield [items[rec["key"]]], [rec]
                    continue
                except queue_mod.Empty:
                    pass
                for f in [f for f in pending if f.done()]:
                    pending.discard(f)
                    try:
                        recs = f.result()
                    except Exception as exc:  # the worker process died (BrokenProcessPool) or similar
                        recs = _crashed([i for i in futures[f] if i[0] not in seen], exc)
                    for rec in recs:  # records whose queue message has not arrived yet
                        if rec["key"] not in seen:
                            seen.add(rec["key"])
                            yield [items[rec["key"]]], [rec]
        finally:
            for f in futures:
                f.cancel()

    def salvage(self, timeout_s: float = 30.0) -> list[list[dict]]:
        """After Ctrl-C: cancel batches not started, let running ones finish (workers ignore SIGINT
        and the pool waits for them anyway) and return their records, so that work is kept."""
        from concurrent.futures import wait
        futures = getattr(self, "_futures", {})
        for f in futures:
            f.cancel()
        running = [f for f in futures if not f.cancelled()]
        wait(running, timeout=timeout_s)
        return [f.result() for f in running if f.done() and not f.cancelled() and f.exception() is None]

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.queue.close()


def _dask_ctx(ctx):
    return ctx


def _dask_eval(ctx, batch):
    return evaluate_batch(ctx, batch)


class DaskExecutor:
    """dask.distributed: the context is sent once; each batch is retried if its worker dies."""
    name = "dask"

    def __init__(self, ctx, address: str, retries: int = 3):
        from distributed import Client
        try:
            self.client = Client(address, timeout="10s")
        except OSError as exc:
            raise SparsimInputError(f"cannot connect to the Dask scheduler at {address}: {exc}", field="executor",
                                    hint="start `dask scheduler` and `dask worker`, or use --executor local") from None
        self.retries = retries
        self.jobs = max(1, sum(self.client.nthreads().values()))
        # The context is a task (not scattered data), so the scheduler can recompute it if every
        # worker holding it dies; it is sent once and reused by every batch.
        self.ctx_future = self.client.submit(_dask_ctx, ctx, key=f"sparsim-ctx-{ctx['id']}-{os.getpid()}",
                                             pure=False, retries=retries)

    def run(self, batches):
        from distributed import as_completed
        futures = self._futures = {}
        for b in batches:
            f = self.client.submit(_dask_eval, self.ctx_future, b, retries=self.retries, pure=False)
            futures[f] = b
        try:
            for f in as_completed(list(futures)):
                b = futures[f]
                try:
                    yield b, f.result()
                except Exception as exc:  # KilledWorker after the retries, a lost scheduler, ...
                    yield b, _crashed(b, exc)
        finally:
            for f in futures:
                f.cancel()

    def salvage(self, timeout_s: float = 30.0) -> list[list[dict]]:
        """After Ctrl-C: keep the batches the cluster has already finished; cancel the rest."""
        futures = getattr(self, "_futures", {})
        done = [f for f in futures if f.status == "finished"]
        for f in futures:
            if f.status != "finished":
                f.cancel()
        out = []
        for f in done:
            try:
                out.append(f.result(timeout=timeout_s))
            except Exception:  # lost with its worker: it is simply evaluated on the next run
                pass
        return out

    def close(self):
        self.client.close()


def _crashed(batch, exc) -> list[dict]:
    msg = f"worker crashed: {type(exc).__name__}: {exc}"
    return [{"key": k, "status": "crashed", "error": msg, "finished_at": time.time()} for k, _ in batch]


def make_executor(sweep: ResolvedSweep, ctx: dict, jobs: int | None):
    addr = dask_address(sweep.executor)
    if addr:
        return DaskExecutor(ctx, addr)
    jobs = jobs or sweep.jobs or os.cpu_count() or 1
    if sweep.executor == "serial" or jobs <= 1:
        return SerialExecutor(ctx)
    return LocalExecutor(ctx, jobs)
