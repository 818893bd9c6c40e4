"""PaintGate: the training thread waits at its batch boundary while a plot paints."""

import threading
import time

from gui.paint_gate import GatedPlotWidget, PaintGate


def test_wait_open_blocks_while_closed_and_returns_when_opened():
    gate = PaintGate()
    t0 = time.perf_counter()
    gate.wait_open(timeout=1.0)  # open: no wait
    assert time.perf_counter() - t0 < 0.05

    waited = []

    def trainer():
        start = time.perf_counter()
        gate.wait_open(timeout=5.0)
        waited.append(time.perf_counter() - start)

    with gate.closed():
        th = threading.Thread(target=trainer)
        th.start()
        time.sleep(0.15)
        assert not waited  # still held
    th.join(5)
    assert waited and 0.1 <= waited[0] < 2.0


def test_wait_is_bounded_when_a_paint_never_ends():
    gate = PaintGate()
    with gate.closed():
        t0 = time.perf_counter()
        gate.wait_open(timeout=0.1)
        assert 0.09 <= time.perf_counter() - t0 < 1.0


def test_plot_paint_closes_the_gate(qtbot):
    gate = PaintGate()
    plot = GatedPlotWidget(gate=gate)
    qtbot.addWidget(plot)
    plot.plot([1, 2, 3], [3, 1, 2])
    plot.resize(300, 200)
    plot.show()
    # the paint itself runs with the gate closed, and the gate is open again afterwards
    closed_during = []
    orig_paint_event = GatedPlotWidget.__mro__[1].paintEvent

    def probe(self, ev):
        closed_during.append(not gate._open.is_set())
        return orig_paint_event(self, ev)

    GatedPlotWidget.__mro__[1].paintEvent = probe
    try:
        plot.viewport().update()
        plot.repaint()
        qtbot.waitUntil(lambda: bool(closed_during), timeout=2000)
    finally:
        GatedPlotWidget.__mro__[1].paintEvent = orig_paint_event
    assert all(closed_during)
    assert gate._open.is_set()
