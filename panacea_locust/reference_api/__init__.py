"""The reference Panacea API: a local, deterministic stand-in for the real service.

Importing this package is cheap; the server (FastAPI, uvicorn) is only imported by ``server``
and ``app``. Of panacea_locust it imports only the contract (``panacea_locust.contract``) and
``__version__``, never the load-generation side, so it stands in for the real API without
sharing its client's code (``tests/test_layers.py`` checks).

- ``dataset.build_dataset`` / ``dataset.Dataset``: the synthetic data set (plain records).
- ``server.main(argv)``: the ``panacea-locust reference-api`` command.
- ``launcher.ReferenceAPIProcess``: run the server as a subprocess (tests, embedded target).
"""
