"""Progress on stderr: redrawn in place on a terminal, only summaries otherwise."""

from __future__ import annotations

import io

from ndb_cli.bench import ProgressBar, Recorder
from ndb_cli.transfer import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_transfer_progress_on_a_terminal_and_in_a_file() -> None:
    terminal, file = Tty(), io.StringIO()
    for stream in (terminal, file):
        progress = Progress(stream, "dump")
        progress.update("10/20 keys")
        progress.say("wrote 20 keys")
    assert "\rdump: 10/20 keys" in terminal.getvalue()
    assert terminal.getvalue().endswith("dump: wrote 20 keys\n")
    assert file.getvalue() == "dump: wrote 20 keys\n"


def test_bench_bar_follows_the_requests_done() -> None:
    recorder = Recorder(requests=4, duration=None)
    recorder.start()
    terminal = Tty()
    bar = ProgressBar(terminal)
    recorder.record("kv_get", 0.001, None)
    bar.draw(recorder)
    assert "[" + "#" * 7 + "." * 23 + "]  25% 1 done" in terminal.getvalue()
    bar.clear()
    quiet = io.StringIO()
    ProgressBar(quiet).draw(recorder)
    assert quiet.getvalue() == ""
