"""Lets the GUI thread paint plots without fighting the training thread for the GIL.

pyqtgraph paints make hundreds of Qt calls from Python; each call drops and re-takes the
GIL, and while a training thread runs Python code every re-take can wait. A plot's
paint therefore closes the gate, and the training thread's ``should_stop`` check (run
between mini-batches) waits while it is closed: the paint runs alone, then training goes
on. The wait is bounded so a stuck paint can never stall training for long.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyqtgraph as pg


class PaintGate:
    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()

    @contextmanager
    def closed(self) -> Iterator[None]:
        """GUI thread: hold the training thread at its next mini-batch boundary."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def wait_open(self, timeout: float = 0.25) -> None:
        """Training thread: wait (releasing the GIL) while a paint is in progress."""
        if not self._open.is_set():
            self._open.wait(timeout)


class GatedPlotWidget(pg.PlotWidget):
    """A PlotWidget whose paint closes the given gate (none: paints as usual)."""

    def __init__(self, *args, gate: PaintGate | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = gate

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self.gate is None:
            super().paintEvent(event)
            return
        with self.gate.closed():
            super().paintEvent(event)
