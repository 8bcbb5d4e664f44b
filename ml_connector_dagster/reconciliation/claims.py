"""Claims on payments: a pass takes each payment it posts in the ledger, with an owner and a lease.

A claim is one compare-and-set UPDATE (Ledger.claim): a payment a live pass is posting is never taken over,
one whose pass died is, once its lease runs out. A heartbeat renews the lease while the pass works.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

from ..store.ledger import Ledger
from ..store.utc import utcnow

log = logging.getLogger(__name__)

# A claim's lease, renewed every quarter of it while the pass works on the payment: short, so a dead run's
# payments are taken over soon, yet long enough to ride out a slow store write.
POSTING_LEASE = timedelta(seconds=20)


def new_owner(actor: str) -> str:
    """A claim owner unique to one pass, readable in the ledger: who, plus a random tag."""
    return f"{actor[:100]}#{uuid.uuid4().hex[:12]}"


class Claims:
    """One pass's claims on payments, kept alive by a heartbeat thread while the pass works on them.

    Why a heartbeat: one write may take minutes (timeouts, retries, a FindCashReceipt before each retry),
    so a fixed lease covering the worst case would leave a dead run's payments stuck that long. Renewed
    every quarter of `lease`, a short lease shows the owner is alive and expires soon after it dies.
    """

    def __init__(self, ledger: Ledger, owner: str, lease: timedelta = POSTING_LEASE) -> None:
        self.ledger, self.owner, self.lease = ledger, owner, lease
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"lease {owner}")

    def __enter__(self) -> Claims:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def take(self, payment_id: str, status: str) -> bool:
        """Claim a payment seen in `status` (see Ledger.claim); held until `drop`."""
        with self._lock:
            taken = self.ledger.claim(payment_id, status, self.owner, utcnow() + self.lease)
            if taken:
                self._held.add(payment_id)
            return taken

    def drop(self, payment_id: str) -> None:
        with self._lock:
            self._held.discard(payment_id)

    def _beat(self) -> None:
        while not self._stop.wait(max(self.lease.total_seconds() / 4, 0.05)):
            with self._lock:
                held = sorted(self._held)
                if not held:
                    continue
                try:
                    kept = self.ledger.renew(held, self.owner, utcnow() + self.lease)
                except Exception:
                    log.warning("could not renew the posting lease of %s", self.owner, exc_info=True)
                    continue
            for lost in set(held) - kept:
                log.warning("%s lost its claim on %s; the pass that took it over finishes it", self.owner, lost)
