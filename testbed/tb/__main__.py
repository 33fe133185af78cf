"""python3 -m tb {up|down|status|leftovers|restart COMPONENT [--no-wait]|import-image PATH}:
the testbed's command line (run as root).

import-image imports an OCI or docker-archive tarball into every node and remembers it, so
`up` imports it again (`make testbed-import IMAGE=path`).

restart stops one component (e.g. kube-apiserver) and starts it again, waiting until it
is healthy unless --no-wait is given.
"""

from __future__ import annotations

import fcntl
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from . import cluster, host, user_images
from . import config as c
from .util import TestbedError, die, say


@contextmanager
def exclusive() -> Iterator[None]:
    """One `up` or `down` at a time: several sessions may share this machine's testbed.

    The lock file lives in the build cache, which `down` keeps anyway.
    """
    c.CACHE.mkdir(parents=True, exist_ok=True)
    with open(c.CACHE / "testbed.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("another testbed up/down is running; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else ""
    try:
        if cmd in ("up", "down"):
            host.require_root()
            with exclusive():
                if cmd == "up":
                    cluster.up()
                else:
                    cluster.down()
        elif cmd == "status":
            return cluster.status()
        elif cmd == "restart":
            try:
                name, wait = cluster.parse_restart(argv[1:])
            except TestbedError as err:
                print(f"testbed: {err.problem}\n  fix: {err.fix}", file=sys.stderr)
                return 2
            host.require_root()
            with exclusive():
                cluster.restart(name, wait)
        elif cmd == "import-image":
            if len(argv) != 2:
                print("usage: python3 -m tb import-image PATH (make testbed-import IMAGE=PATH)",
                      file=sys.stderr)
                return 2
            host.require_root()
            with exclusive():
                user_images.import_image(argv[1])
        elif cmd == "leftovers":
            left = cluster.leftovers()
            print(json.dumps(left, indent=2))
            return 1 if left else 0
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except TestbedError as err:
        die(err)
    except BrokenPipeError:  # `make testbed-status | head`
        return 0
    except (RuntimeError, TimeoutError, OSError) as err:  # a host command failed unexpectedly
        die(TestbedError(str(err), "fix the cause above; `make testbed-down` cleans up a "
                         "half-started testbed"))
    except KeyboardInterrupt:
        print("\ntestbed: interrupted; `make testbed-down` cleans up", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
