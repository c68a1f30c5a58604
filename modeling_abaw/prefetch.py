"""`prefetch`: run a producer (decoding, face cropping) in a background thread while the caller computes.

Decoding (PyAV), resizing and warping (OpenCV) and the encoder's matmuls (torch) all release the GIL, so a thread is
enough to overlap them: the encoder need not wait for the next batch to be cut. Items come out in the producer's
order, so results are the same as without the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")
_DONE = object()


def prefetch(items: Iterable[Item], depth: int = 2) -> Iterator[Item]:
    """Iterate over `items`, produced up to `depth` items ahead in a background thread (depth 0: no thread).

    An exception raised by the producer is raised here, in the caller, at the point its item would have come. When
    the caller stops early (an exception of its own, `break`, or closing the generator), the producer is told to stop
    and is joined, so no thread outlives the iteration.
    """
    if depth < 1:
        yield from items
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        """Hand an item over, waiting while the queue is full; False when the caller has stopped."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((item, None)):
                    return
        except BaseException as error:  # handed to the caller, which raises it
            put((_DONE, error))
            return
        finally:
            # A generator stopped early is closed here, in its own thread, so its open files close now.
            getattr(iterator, "close", lambda: None)()
        put((_DONE, None))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
