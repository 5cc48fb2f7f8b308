"""`meshctl dataset info|export|rejects`: look into the stored requests table (--data DIR).

Each subcommand: options → one `meshctl.store.Dataset` call → one writer.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from meshctl.options import data_option, output_option


@click.group()
def dataset() -> None:
    """Inspect and export the stored requests table."""


@dataset.command()
@data_option
@output_option("table", "json", "yaml", default="table")
def info(data_dir: str, output: str) -> None:
    """Rows, rejected lines, sources, time range and size of the dataset.

    \b
    Example:
      meshctl dataset info -o json    # {"rows": N, "rejected": N, "sources": [...], ...}
    """
    from meshctl.output import dump_json, dump_yaml, print_table, write_text
    from meshctl.store import Dataset

    ds = Dataset(data_dir).require()
    doc = ds.info()
    if output == "json":
        write_text(dump_json(doc))
        return
    if output == "yaml":
        write_text(dump_yaml(doc))
        return
    tr = doc["time_range"]
    click.echo(f"dataset   {doc['path']}")
    click.echo(f"rows      {doc['rows']:,}  (rejected {doc['rejected']:,}, duplicates skipped {doc['duplicates']:,})")
    click.echo(f"time      {tr[0]} .. {tr[1]}" if tr else "time      -")
    click.echo(f"size      {doc['bytes'] / 1e6:,.1f} MB in {doc['collections']} collection(s)")
    print_table(["source", "format", "rows", "rejected", "duplicates"],
                [[s["source"], s.get("format"), s["rows"], s["rejected"], s.get("duplicates", 0)]
                 for s in doc["sources"]], title="sources")


@dataset.command()
@data_option
@output_option("csv", "jsonl", "parquet", default="csv")
@click.option("--file", "out_file", metavar="FILE", help="Write here instead of stdout.")
@click.option("--since", metavar="TIME", help="Only rows from here (30m = the last 30 minutes of the data, or a time).")
@click.option("--until", metavar="TIME", help="Only rows before this.")
@click.option("--columns", metavar="A,B,...", help="Only these requests-table columns.")
def export(data_dir: str, output: str, out_file: str | None, since: str | None, until: str | None,
           columns: str | None) -> None:
    """Write the requests table as CSV, JSON lines or Parquet (streamed, any size).

    \b
    Examples:
      meshctl dataset export -o csv > requests.csv
      meshctl dataset export -o parquet --file requests.parquet --since 1h
      meshctl dataset export -o jsonl --columns timestamp,response_code,destination_service
    """
    from meshctl.store import Dataset

    ds = Dataset(data_dir).require()
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    batches, schema = _batches(ds, since, until, cols)
    if output == "parquet" and not out_file and sys.stdout.isatty():
        raise click.UsageError("Parquet is binary: give --file FILE or redirect stdout")
    with _open_out(out_file) as sink:
        if output == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetWriter(sink, schema, compression="zstd") as w:
                for b in batches:
                    w.write_batch(b)
        elif output == "csv":
            import pyarrow.csv as pcsv

            with pcsv.CSVWriter(sink, _text_schema(schema)) as w:
                for b in batches:
                    w.write_batch(_text_batch(b))
        else:
            for b in batches:
                _write_jsonl(sink, b)


@dataset.command()
@data_option
@output_option("table", "jsonl", default="table")
@click.option("--limit", type=click.IntRange(0), default=50, show_default=True, help="At most this many (0: all).")
def rejects(data_dir: str, output: str, limit: int) -> None:
    """The input lines that could not be read: file, line, field, reason and a sample."""
    from meshctl.output import dump_json, print_table
    from meshctl.store import Dataset

    ds = Dataset(data_dir)
    items = []
    for i, r in enumerate(ds.iter_rejects()):
        if limit and i >= limit:
            break
        items.append(r)
    if output == "jsonl":
        for r in items:
            sys.stdout.write(dump_json(r, indent=None))
        return
    print_table(["file", "line", "field", "reason", "sample"],
                [[r["file"], r["line"], r.get("field"), r["reason"], (r.get("sample") or "")[:60]] for r in items],
                title=f"rejected lines ({ds.info()['rejected']:,} in all)" if ds.exists() else "rejected lines")


# ---- helpers --------------------------------------------------------------------------------
def _batches(ds: Any, since: str | None, until: str | None, cols: list[str] | None):
    from analyzers import table as rt
    from meshctl.errors import InputError

    if cols:
        unknown = sorted(set(cols) - set(rt.COLUMN_NAMES))
        if unknown:
            raise InputError(f"unknown requests-table columns: {', '.join(unknown)}", field="--columns")
    start, end = ds.window(since, until)
    scanner = ds.scanner(columns=cols, since=start, until=end, batch_size=64_000)
    return scanner.to_batches(), scanner.projected_schema


class _open_out:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self.f: Any = None

    def __enter__(self) -> Any:
        if self.path and self.path != "-":
            self.f = open(self.path, "wb")
            return self.f
        return sys.stdout.buffer

    def __exit__(self, *exc: object) -> None:
        if self.f is not None:
            self.f.close()
        else:
            sys.stdout.buffer.flush()


def _text_schema(schema: Any) -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(f.name, pa.string()) if pa.types.is_timestamp(f.type) else f for f in schema])


def _text_batch(batch: Any) -> Any:
    """Timestamps as RFC 3339 text (Arrow's CSV writer would print a space and no zone)."""
    import pyarrow as pa

    cols = []
    for f, col in zip(batch.schema, batch.columns, strict=False):
        if pa.types.is_timestamp(f.type):
            col = _iso(col)
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=_text_schema(batch.schema))


def _iso(col: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    # %S in Arrow's strftime prints the fraction for sub-second units: 12:51:05.656000 -> RFC 3339 with Z.
    text = pc.strftime(col, format="%Y-%m-%dT%H:%M:%S")
    return pc.if_else(pc.is_valid(col), pc.binary_join_element_wise(text, pa.scalar("Z"), ""),
                      pa.scalar(None, pa.string()))


def _write_jsonl(sink: Any, batch: Any) -> None:
    import json

    rows = _text_batch(batch).to_pylist()
    sink.write("".join(json.dumps({k: v for k, v in r.items() if v is not None}, ensure_ascii=False) + "\n"
                       for r in rows).encode("utf-8"))
