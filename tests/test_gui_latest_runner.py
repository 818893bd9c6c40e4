"""LatestRunner: the views' slider jobs run one at a time, the newest request wins, and no result
is lost or delivered out of order."""

from __future__ import annotations

import threading
import time

from gui.views.latest_runner import LatestRunner


def test_requests_made_while_a_job_runs_collapse_into_the_newest(qtbot):
    runner = LatestRunner()
    release = threading.Event()
    ran: list[str] = []
    delivered: list[tuple] = []
    runner.finished.connect(lambda tag, result: delivered.append((tag, result)))

    def job(tag, wait=False):
        def fn(_ctx):
            if wait:
                release.wait(10)
            ran.append(tag)
            return tag.upper()

        return fn

    runner.submit("a", job("a", wait=True))
    for tag in ("b", "c", "d"):
        runner.submit(tag, job(tag))
    assert runner.is_busy()
    release.set()
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=10000)
    assert ran == ["a", "d"]  # b and c were replaced while a ran
    assert delivered == [("a", "A"), ("d", "D")]


def test_a_finished_job_whose_result_is_still_queued_is_not_cancelled(qtbot):
    runner = LatestRunner()
    done = threading.Event()
    delivered: list = []
    runner.finished.connect(lambda tag, result: delivered.append(tag))

    def first(_ctx):
        done.set()
        return 1

    runner.submit("first", first)
    done.wait(10)
    time.sleep(0.2)  # its thread has ended; the result waits in the event queue
    runner.submit("second", lambda _ctx: 2)
    runner.submit("third", lambda _ctx: 3)
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=10000)
    # the queued result arrives, then only the newest request runs: nothing older is drawn last
    assert delivered == ["first", "third"]


def test_an_error_does_not_stop_the_queue(qtbot):
    runner = LatestRunner()
    errors, delivered = [], []
    runner.errored.connect(lambda tag, message: errors.append((tag, message)))
    runner.finished.connect(lambda tag, result: delivered.append(tag))
    release = threading.Event()

    def failing(_ctx):
        release.wait(10)
        raise ValueError("bad settings")

    runner.submit("x", failing)
    runner.submit("y", lambda _ctx: 0)
    release.set()
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=10000)
    assert [t for t, _ in errors] == ["x"] and "bad settings" in errors[0][1]
    assert delivered == ["y"]
