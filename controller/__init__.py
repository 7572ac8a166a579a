"""ghostbench controller: plans sweeps and runs their steps (locally or on Kubernetes).

The controller imports ``jobs``; ``jobs`` never imports the controller.
"""
