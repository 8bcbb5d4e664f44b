"""Building hundreds of thousands of small Python objects at once, without the cyclic GC rescanning them."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building hundreds of thousands of small objects.

    Nothing built by matching forms reference cycles, and with a large heap (the caller's DataFrames of
    Python objects) each automatic collection rescans everything: pausing makes matching ~2x faster.
    On the way out, freeze-then-unfreeze moves the survivors straight to the oldest generation, so
    that they are not all rescanned by the first young collection after resuming.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
