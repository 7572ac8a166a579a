"""Data in: images become model inputs (``imaging``, the seed's recipe in PIL; ``imaging_opencv``, the opt-in
fast pipeline), labels files are read (``labels``), and a model card resolves to its recipe (``recipe``)."""
