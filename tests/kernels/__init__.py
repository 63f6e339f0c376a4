"""The kernel-matrix tier: boot another kernel under QEMU and run commands in it.

``qemu.py`` owns the harness (kernel extraction, initramfs, QEMU, output
streaming); ``runner.py`` runs the ``tests/guest`` pytest tier inside one boot.
"""
