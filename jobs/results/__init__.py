"""Results: top-k arithmetic (``metrics``), the report's tables (``tables``) and plots (``plots``), the seed's
``published`` figures, how sure a figure is (``stats``) and two sweeps compared (``compare``, ``compare_view``)."""
