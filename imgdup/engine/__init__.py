"""Engines: who schedules the batch kernels. ``local`` is the process pool of
:mod:`imgdup.parallel`; ``dask`` (the dask extra) is :mod:`imgdup.engine.dask`,
imported only when asked for, so ``import imgdup`` never imports dask."""

ENGINES = ("local", "dask")
