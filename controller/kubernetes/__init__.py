"""Everything Kubernetes: ``api`` (the one module that imports the kubernetes client), ``settings`` (where and
how Jobs run), ``manifests`` (pure Job builders) and ``executor`` (submits, watches, adopts). ``docs/kubernetes.md``."""
