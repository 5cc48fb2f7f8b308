"""Report writers: results of the analyzers rendered as text, Markdown, JUnit XML, SVG/PNG, ...

Each writer takes a result dataclass and returns text (or writes one file); none of them computes
anything the analyzer did not.
"""
