"""Tests of controller/: sweep files, plans, the local runner, leases, gates and reruns."""
