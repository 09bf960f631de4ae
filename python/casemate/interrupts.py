"""Ctrl-C and SIGTERM end a casemate run the same way: an exception every command already turns
into a sealed run record `canceled`, its host locks released and its history written.

Python raises KeyboardInterrupt for SIGINT by itself; `on_sigterm` makes SIGTERM (systemd
stopping a scheduled run, `kill`) raise `Terminated`, a KeyboardInterrupt, instead of killing the
process before any of that. ansible-runner installs handlers of its own for both signals while a
playbook runs (they cancel the play) and never takes them back: `kept` puts casemate's back."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop as Ctrl-C stops (exit 143 instead of 130)."""


_sigterm = threading.Event()


def _terminated(_signum: int, _frame: FrameType | None) -> None:
    _sigterm.set()
    raise Terminated


def was_terminated() -> bool:
    """Whether SIGTERM arrived (typer turns every KeyboardInterrupt into exit status 130)."""
    return _sigterm.is_set()


def on_sigterm() -> None:
    """SIGTERM raises Terminated in the main thread from now on."""
    _sigterm.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)


@contextmanager
def kept() -> Iterator[None]:
    """Whatever the block installs for SIGINT and SIGTERM is undone when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in before.items():
            if handler is not None:
                signal.signal(signum, handler)
