"""Frames and structures: the labelled-frame container, structure checks, splits, sampling, CuI defects.

May import: nothing of core/ (numpy, ASE only).
"""
