"""The process exit codes, one table for every command: the request verdict, the posture
checks and the errors the engine reports all map onto it.

It lives in the pure core so the posture report (a pure function) can state its own exit
code; the engine (:mod:`aftershock.errors`) uses the same table.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    PASS = 0
    FAIL = 1  # an SLO, a behaviour check or a posture check failed, with numbers
    USAGE = 2  # asked for something that cannot be done as asked (a bad config field, ...)
    INCONCLUSIVE = 3  # could not measure or judge: never a pass
