"""The fault bench's own process watcher: it must wait between looks, not spin on a core the
pipeline it times needs (a watcher that spun took 75% of one of this machine's two cores)."""

import time
from pathlib import Path

from tracker.bench import faultenv


class CountedProcs(dict[str, object]):
    def __init__(self) -> None:
        super().__init__()
        self.looks = 0

    def items(self):  # type: ignore[no-untyped-def]
        self.looks += 1
        return super().items()


def test_the_watcher_looks_every_half_second_and_stops_when_told(tmp_path: Path) -> None:
    pipeline = faultenv.Pipeline(tmp_path, "postgresql://unused", "redis://unused", 25, {})
    procs = CountedProcs()
    pipeline.procs = procs  # type: ignore[assignment]
    pipeline.watch()
    time.sleep(4 * faultenv.WATCH_EVERY_S + 0.2)
    pipeline.stop_all()
    looked = procs.looks
    assert 2 <= looked <= 6, f"{looked} looks in about four intervals"
    time.sleep(2 * faultenv.WATCH_EVERY_S + 0.2)
    assert procs.looks == looked, "the watcher went on after stop_all"
