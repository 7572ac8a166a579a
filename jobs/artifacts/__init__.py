"""What stages leave in the store: the commit protocol (``commit``: files, then a manifest written last),
tensor shards (``shards``), and the document types, one module per document (``records``).
Layout and protocol: ``docs/architecture.md``."""
