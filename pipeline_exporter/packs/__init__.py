"""The built-in packs, one folder each: ``<name>/pack.yaml`` (queries, metrics, parameters),
``history.yaml`` (the counters' history for ``backfill``), ``schema/<dialect>.sql`` (the demo's
DDL), ``demo.py`` (its demo data) and its dashboard and alert declarations. ``packloader`` finds
them by listing this folder: adding a pack is adding its folder, nothing lists the packs by hand.
"""
