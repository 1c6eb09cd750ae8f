"""Audits over more rows than fit in memory: a map over partitions plus an associative reduce.

`sources` reads a dataset in chunks, `partials` is the map (one chunk -> mergeable tables and a
bottom-k sample) and its reduce, `backends` runs the map on this machine or on a Dask cluster.
The checks compute their metrics from the reduced tables, so both backends give the same numbers.
"""
