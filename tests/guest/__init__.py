"""Tests that run inside the kernel-matrix guest (scripts/test-kernels)."""
