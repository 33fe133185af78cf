"""Steady load: locust as a subprocess, every request recorded.

    from aftershock.load import LoadDriver, LoadSpec

    spec = LoadSpec.from_config(config, host="http://198.18.0.10:80")
    with LoadDriver(spec, workdir) as load:   # returns once the first request is recorded
        ...
    requests = load.requests()                # checks.timeline.Requests
"""

from aftershock.load.driver import LoadDriver, LoadError, LoadResult, LoadSpec, read_records

__all__ = ["LoadDriver", "LoadError", "LoadResult", "LoadSpec", "read_records"]
