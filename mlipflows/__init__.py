"""mlipflows: high-throughput materials screening with machine-learned interatomic potentials."""

__version__ = "0.1.0"
