"""The testbed bring-up program: `python3 -m tb up|down|status|leftovers` (see README.md)."""
