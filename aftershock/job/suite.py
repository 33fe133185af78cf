"""``aftershock job suite``: the Job's suite container, inside the pod."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from aftershock.config import Config
from aftershock.errors import EXIT_INCONCLUSIVE, AftershockError
from aftershock.job.pod import DONE_FILE, ERROR_FILE, EXIT_FILE, FETCHED_FILE
from aftershock.job.rbac import check_rbac


def suite_main(config: Config, results: Path, run: Callable[[], int],
               rbac_check: bool = True) -> int:
    """The Job's suite container: check RBAC, run, leave exit-code and done-file.

    SIGTERM (the Job deleted) is an interrupt from the first line on: PID 1 ignores a
    signal it has no handler for, and the rollbacks need the unwinding.
    """
    from aftershock.safety import install_signal_handlers

    install_signal_handlers()
    results.mkdir(parents=True, exist_ok=True)
    for stale in (EXIT_FILE, DONE_FILE, FETCHED_FILE, ERROR_FILE):
        (results / stale).unlink(missing_ok=True)
    code = EXIT_INCONCLUSIVE
    try:
        if rbac_check:
            check_rbac(config)
        code = run()
    except AftershockError as e:
        print(f"aftershock: {e}", file=sys.stderr, flush=True)
        (results / ERROR_FILE).write_text(f"{e}\n")
        code = e.exit_code
    except KeyboardInterrupt as e:
        print(f"aftershock: interrupted: {e}", file=sys.stderr, flush=True)
        code = EXIT_INCONCLUSIVE
    finally:
        (results / EXIT_FILE).write_text(f"{code}\n")
        (results / DONE_FILE).touch()
    return code
