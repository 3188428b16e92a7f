"""A map over worker processes that works from any caller, plain scripts included.

multiprocessing's "spawn" and "forkserver" workers re-import the caller's `__main__` module.
A plain script without an `if __name__ == "__main__":` guard (the way most users write the
README's snippets) then runs again in every worker: the worker's copy calls the builder
again, multiprocessing refuses to start processes during that bootstrapping, the worker
dies, and the pool starts another one, forever. "fork" re-imports nothing, but would copy
JAX's thread pools and eSpeak's state in a broken state. So `ordered_map` starts fresh
interpreters with `subprocess` that import nothing but the mapped function's module, and
talks to them over pipes: no `__main__` is ever re-imported, guarded or not.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_WORKER_CODE = "from lipjax.data.workers import serve; serve()"


def ordered_map(function: Callable[[Any], Any], items: Iterable, num_workers: int) -> Iterator:
    """`function(item)` for every item, in order, computed by `num_workers` worker processes
    (1, or fewer than two items: in this process). `function` must be importable by name (a
    module-level function of a package); an exception it raises in a worker is raised here,
    with the worker's traceback as a note."""
    if num_workers < 1:
        raise ValueError(f"num_workers: expected a positive integer, got {num_workers}")
    items = list(items)
    if num_workers == 1 or len(items) < 2:
        yield from map(function, items)
        return
    function_bytes = pickle.dumps(function)  # fails here, at once, for a lambda or a local
    payloads = [pickle.dumps(item) for item in items]
    workers = [_start_worker() for _ in range(min(num_workers, len(items)))]
    # Item i goes to worker i % N, so the results are read back in order. One feeding thread
    # per worker: a worker blocked writing a large result must never block our writes.
    for index, worker in enumerate(workers):
        threading.Thread(
            target=_feed, args=(worker, [function_bytes, *payloads[index :: len(workers)]]),
            daemon=True,
        ).start()  # fmt: skip
    try:
        for index in range(len(items)):
            yield _receive(workers[index % len(workers)], function, index)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
            worker.stdout.close()


def _start_worker() -> subprocess.Popen:
    # The worker sees this process's import path, so it imports the same code.
    path = [os.path.abspath(entry or os.curdir) for entry in sys.path]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env=env,
    )  # fmt: skip


def _feed(worker: subprocess.Popen, messages: list[bytes]) -> None:
    try:
        for message in messages:
            worker.stdin.write(message)
        worker.stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        pass  # the worker died (or we killed it): `_receive` reports why


def _receive(worker: subprocess.Popen, function: Callable, index: int) -> Any:
    try:
        status, value, details = pickle.load(worker.stdout)
    except EOFError:
        code = worker.wait()
        raise RuntimeError(
            f"a worker process of {function.__qualname__} exited with code {code} before "
            f"returning item {index} (its error output is above)"
        ) from None
    if status == "error":
        value.add_note(f"raised in a worker process on item {index}:\n{details}")
        raise value
    return value


def serve() -> None:
    """The worker's side: reads the function, then items, from stdin until it closes, and
    writes ("ok", result, None) or ("error", exception, traceback) for each to stdout."""
    results = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    # Anything the function prints goes to stderr: stdout carries only results.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    function = pickle.load(requests)
    while True:
        try:
            item = pickle.load(requests)
        except EOFError:
            return
        try:
            reply = ("ok", function(item), None)
        except Exception as error:
            reply = ("error", _picklable(error), traceback.format_exc())
        pickle.dump(reply, results)
        results.flush()
        if reply[0] == "error":
            return


def _picklable(error: Exception) -> Exception:
    try:
        return pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
