"""Energy, carbon and tenant budgets, measured.

Layout (one way): ``sources/`` (one ``EnergySource`` Protocol, one file per backend:
``dcgm``, ``kepler``, ``kepler_legacy``, ``estimate``; ``detect`` picks them from what the
Prometheus server has) -> ``collect`` (workloads, tenants, unallocated) -> ``carbon`` (grid
intensity table, PUE, embodied share) -> ``budgets`` (periods, forecasts, findings) ->
``usage`` (published usage, read by admission). ``models`` holds the typed result
(``EnergySection``, the ``energy`` field of the scan result document); ``settings`` the
``energy`` config section; ``prometheus`` the HTTP API client.

Entry point: ``guard.energy.collect.scan_energy(config, client, window, inputs)``. Nothing is
imported or done here at import time.
"""
