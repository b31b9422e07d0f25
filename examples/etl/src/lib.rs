//! Extract, transform, load: pages are extracted concurrently with `map`, then transformed
//! and loaded, with a Markdown report and a table as artifacts; and a daily load in a
//! transaction, loaded once per day and rolled back when its check fails.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use weir_sdk::artifacts::{create_markdown_artifact, create_table_artifact};
use weir_sdk::{TransactionContext, TransactionOptions, flow, info, task};

weir_sdk::export!();

const PAGE_SIZE: u32 = 4;

/// A raw record, as the source gives it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Record {
    id: u32,
    customer: String,
    amount_cents: i64,
}

/// A cleaned row, ready to load.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Row {
    id: u32,
    customer: String,
    amount: f64,
}

/// Fetches one page of records. The data is made up (and always the same) so that the example
/// needs no network.
#[task(
    retries = 2,
    retry_delay_seconds = 0.1,
    task_run_name = "extract-page-{page}"
)]
fn extract(page: u32) -> Vec<Record> {
    (0..PAGE_SIZE)
        .map(|i| {
            let id = page * PAGE_SIZE + i;
            Record {
                id,
                customer: format!("  Customer {id} "),
                amount_cents: i64::from(id * 7919 % 10_000),
            }
        })
        .collect()
}

/// Trims and lowercases names, and turns cents into units.
#[task]
fn transform(records: Vec<Record>) -> Vec<Row> {
    records
        .into_iter()
        .map(|record| Row {
            id: record.id,
            customer: record.customer.trim().to_lowercase(),
            amount: record.amount_cents as f64 / 100.0,
        })
        .collect()
}

/// Loads the rows (here: checks them) and returns how many were loaded.
#[task]
fn load(rows: Vec<Row>) -> weir_sdk::Result<usize> {
    if let Some(row) = rows.iter().find(|row| row.amount < 0.0) {
        weir_sdk::bail!("row {} has a negative amount", row.id);
    }
    Ok(rows.len())
}

/// Extracts `n` pages, transforms and loads them, and reports.
#[flow(name = "etl", log_prints = true)]
fn etl(#[default(5)] n: u32) -> weir_sdk::Result<usize> {
    let pages = extract::map(0..n);
    let records: Vec<Record> = weir_sdk::wait_all(pages)?.into_iter().flatten().collect();
    info!("extracted {} records from {n} pages", records.len());

    let rows = transform(records)?;
    let loaded = load(rows.clone())?;
    info!("loaded {loaded} rows");

    let total: f64 = rows.iter().map(|row| row.amount).sum();
    let report = format!(
        "# ETL report\n\n| pages | rows | total amount |\n|---|---|---|\n| {n} | {loaded} | {total:.2} |\n"
    );
    create_markdown_artifact(&report, Some("etl-report"), Some("Summary of the ETL run"))?;
    create_table_artifact(&rows, Some("etl-table"), Some("The loaded rows"))?;
    Ok(loaded)
}

/// Removes what `load_rows` loaded, when the transaction it ran in rolls back.
fn unload(txn: &TransactionContext) -> weir_sdk::Result<()> {
    let table: String = txn.get("table")?;
    info!(
        "rolled back {}: removed its rows from {table}",
        txn.task_run_name
    );
    Ok(())
}

/// Loads rows into the day's table (here: counts them); `unload` undoes it.
#[task(on_rollback = [unload])]
fn load_rows(rows: Vec<Row>) -> usize {
    rows.len()
}

/// A day needs at least `min_rows` rows.
#[task]
fn check(loaded: usize, min_rows: usize) -> weir_sdk::Result<()> {
    if loaded < min_rows {
        weir_sdk::bail!("only {loaded} rows loaded, expected at least {min_rows}");
    }
    Ok(())
}

/// Loads one day, once: a run for a day that committed before returns early, and a
/// failed check rolls the load back.
#[flow(name = "etl-daily")]
fn etl_daily(
    day: String,
    #[default(2)] pages: u32,
    #[default(1)] min_rows: usize,
) -> weir_sdk::Result<String> {
    let options = TransactionOptions::new().key(format!("etl-daily-{day}"));
    weir_sdk::transaction(options, |txn| {
        if txn.is_committed() {
            return Ok(format!("{day} was loaded before"));
        }
        txn.set("table", &format!("sales_{day}"))?;
        let pages = weir_sdk::wait_all(extract::map(0..pages))?;
        let loaded = load_rows(transform(pages.into_iter().flatten().collect())?)?;
        check(loaded, min_rows)?;
        Ok(format!("{day}: loaded {loaded} rows"))
    })
}
