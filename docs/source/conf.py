"""Sphinx configuration of aiida-anharmal."""

project = 'aiida-anharmal'
author = 'aiida-anharmal developers'
release = '0.2.0'
extensions = ['sphinx.ext.mathjax']
html_theme = 'alabaster'
exclude_patterns = []
