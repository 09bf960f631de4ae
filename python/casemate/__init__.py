"""casemate: harden container hosts and Kubernetes nodes to the CIS benchmarks, then prove it."""

__version__ = "0.1.0"
