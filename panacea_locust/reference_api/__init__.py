"""The reference Panacea API: a local, deterministic stand-in for the real service.

Importing this package is cheap; the server (FastAPI, uvicorn) is only imported by ``server``
and ``app``. It never imports the load-generation side of panacea_locust.

- ``dataset.build_dataset`` / ``dataset.Dataset``: the synthetic data set (plain records).
- ``server.main(argv)``: the ``panacea-locust reference-api`` command.
- ``launcher.ReferenceAPIProcess``: run the server as a subprocess (tests, embedded target).
"""
