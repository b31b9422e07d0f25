"""Extract, transform, load: pages are extracted concurrently with `map`, then transformed
and loaded, with a Markdown report and a table as artifacts."""

from dataclasses import dataclass

from weir import flow, get_run_logger, task
from weir.artifacts import create_markdown_artifact, create_table_artifact

PAGE_SIZE = 4


@dataclass
class Record:
    """A raw record, as the source gives it."""

    id: int
    customer: str
    amount_cents: int


@dataclass
class Row:
    """A cleaned row, ready to load."""

    id: int
    customer: str
    amount: float


@task(retries=2, retry_delay_seconds=0.1, task_run_name="extract-page-{page}")
def extract(page: int) -> list[Record]:
    """Fetches one page of records. The data is made up (and always the same) so that the
    example needs no network."""
    return [
        Record(id=page * PAGE_SIZE + i, customer=f"  Customer {page * PAGE_SIZE + i} ",
               amount_cents=(page * PAGE_SIZE + i) * 7919 % 10_000)
        for i in range(PAGE_SIZE)
    ]


@task
def transform(records: list[Record]) -> list[Row]:
    """Trims and lowercases names, and turns cents into units."""
    return [Row(id=r.id, customer=r.customer.strip().lower(), amount=r.amount_cents / 100) for r in records]


@task
def load(rows: list[Row]) -> int:
    """Loads the rows (here: checks them) and returns how many were loaded."""
    for row in rows:
        if row.amount < 0:
            raise ValueError(f"row {row.id} has a negative amount")
    return len(rows)


@flow(name="etl", log_prints=True)
def etl(n: int = 5) -> int:
    """Extracts `n` pages, transforms and loads them, and reports."""
    logger = get_run_logger()
    pages = extract.map(range(n))
    records = [record for page in pages.result() for record in page]
    logger.info(f"extracted {len(records)} records from {n} pages")

    rows = transform(records)
    loaded = load(rows)
    logger.info(f"loaded {loaded} rows")

    total = sum(row.amount for row in rows)
    report = (
        "# ETL report\n\n| pages | rows | total amount |\n|---|---|---|\n"
        f"| {n} | {loaded} | {total:.2f} |\n"
    )
    create_markdown_artifact(report, key="etl-report", description="Summary of the ETL run")
    create_table_artifact(rows, key="etl-table", description="The loaded rows")
    return loaded
