"""Run one pytest tier and say plainly when it collected nothing.

pytest exits 5 when no test was collected. For a tier that is expected to hold
tests that is an error, not a pass, so it is reported and turned into exit 1.
"""

import subprocess
import sys


def main() -> int:
    tier, sep, *args = sys.argv[1:]
    if sep != "--":
        print("usage: run_tier.py TIER -- PYTEST_ARGS...", file=sys.stderr)
        return 2
    code = subprocess.call([sys.executable, "-m", "pytest", *args])
    if code == 5:
        print(f"tier {tier!r}: pytest collected no tests; a tier without tests is a defect",
              file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
