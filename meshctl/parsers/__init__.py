"""Parsers: raw access-log lines and trace exports → requests-table rows (analyzers.table).

Every parser returns Arrow tables conforming to the requests table plus `Reject`s for what it could
not read (parsers/base.py). Nothing here does I/O beyond the bytes it is handed.
"""
