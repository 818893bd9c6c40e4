"""gui.tasks.TaskRunner: results reach the GUI thread, stale runs are dropped, errors are reported."""

import threading
import time

from engine.errors import Cancelled, DataError
from gui.tasks import TaskRunner


def test_progress_and_result_arrive_in_order(qtbot):
    runner = TaskRunner()
    seen = []
    runner.progressed.connect(seen.append)

    def job(ctx):
        for i in range(3):
            ctx.progress((i + 1, 3))
        return "done"

    with qtbot.waitSignal(runner.finished, timeout=5000) as blocker:
        runner.start(job)
    assert blocker.args == ["done"]
    qtbot.waitUntil(lambda: len(seen) == 3, timeout=2000)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert runner.wait(5000)


def test_starting_again_cancels_and_drops_the_old_run(qtbot):
    runner = TaskRunner()
    results = []
    runner.finished.connect(results.append)
    old_saw_cancel = threading.Event()

    def slow(ctx):
        while not ctx.cancelled():
            time.sleep(0.005)
        old_saw_cancel.set()
        return "stale"

    runner.start(slow)
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.start(lambda ctx: "fresh")
    assert old_saw_cancel.wait(5)
    assert runner.wait(5000)
    qtbot.wait(50)
    assert results == ["fresh"]


def test_input_errors_keep_their_message_and_cancel_aborts(qtbot):
    runner = TaskRunner()

    def bad(ctx):
        raise DataError("photos/cat: class folder has no images")

    with qtbot.waitSignal(runner.errored, timeout=5000) as blocker:
        runner.start(bad)
    assert blocker.args == ["photos/cat: class folder has no images"]

    def crash(ctx):
        raise ZeroDivisionError("boom")

    with qtbot.waitSignal(runner.errored, timeout=5000) as blocker:
        runner.start(crash)
    message = blocker.args[0]
    # said in words first (no "Unexpected error: <Type>"), with the exception's text and details
    assert message.startswith("It stopped because of an internal error (boom).")
    assert "ZeroDivisionError" in message.split("\n\n", 1)[1]

    def cancelled(ctx):
        raise Cancelled()

    with qtbot.waitSignal(runner.aborted, timeout=5000):
        runner.start(cancelled)
    assert runner.wait(5000)


def test_shutdown_stops_a_running_job(qtbot):
    runner = TaskRunner()
    entered = threading.Event()

    def loop(ctx):
        entered.set()
        while not ctx.cancelled():
            time.sleep(0.005)

    runner.start(loop)
    assert entered.wait(5)
    assert runner.is_running()
    assert runner.shutdown(5000)
    assert not runner.is_running()
