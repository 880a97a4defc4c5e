"""The cached feature classifier: one process at a time trains it; a second waits and says why."""
from __future__ import annotations

import fcntl
import threading
import time

from genlab.training import feature_classifier as cache


def test_a_second_process_waits_for_the_classifier_lock_and_says_why(tmp_path) -> None:
    folder = tmp_path / "cache" / "classifier-shapes"
    lines: list[str] = []
    entered = threading.Event()

    def second() -> None:
        with cache.classifier_lock(folder, lines.append):
            entered.set()

    folder.parent.mkdir(parents=True)
    with open(folder.with_name(folder.name + ".lock"), "a+b") as first:
        fcntl.flock(first, fcntl.LOCK_EX)  # the first process, training
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.3)
        assert not entered.is_set(), "the lock let a second writer in"
        assert len(lines) == 1 and "waiting" in lines[0] and str(folder) in lines[0]
        fcntl.flock(first, fcntl.LOCK_UN)
    waiter.join(timeout=10)
    assert entered.is_set()
    with cache.classifier_lock(folder, lines.append):  # free again: no waiting line
        assert len(lines) == 1

