"""Pure analysis over the requests table: graphs, rollout scoring, suggestions.

No network, no Kubernetes, no click: every function takes DataFrames / graphs and config objects
and returns small dataclasses. Importable from a notebook.
"""
