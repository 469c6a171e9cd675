"""Phonons (phonopy) and lattice thermal conductivity (phono3py) around the batched engine.

``harmonic``: supercells, displacements, force constants, bands, DOS, thermal properties and
the imaginary-mode rule; ``kappa``: fc2/fc3 and κ (RTA, Wigner); ``batched``: the relaxation
and supercell-force steps the Makers share; ``plots``: figures from stored documents.
"""
