"""Bootstrap and backfill: every selected entity embedded by one embedding version, into both stores.

selection (``selection.py``: a snapshot of the entity tables, or the full history of row
versions) -> template -> content hash -> dedup -> bulk embedding (``bulk.py``, through an
engine: ``engines.py``) -> the online store and the offline history -> optional flip of
the ``active`` version (``backfill.py``) -> a report (``report.py``).
"""
