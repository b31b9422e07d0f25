// Extract, transform, load: pages are extracted concurrently with `map`, then
// transformed and loaded, with a Markdown report and a table as artifacts.
import { flow, task, getRunLogger, createMarkdownArtifact, createTableArtifact } from "weir";

const PAGE_SIZE = 4;

// Fetches one page of records. The data is made up (and always the same) so that the
// example needs no network.
const extract = task({ name: "extract", retries: 2, retryDelaySeconds: 0.1, taskRunName: "extract-page-{page}",
  parameters: { page: { type: "integer", minimum: 0 } } }, (page) => {
  const records = [];
  for (let i = 0; i < PAGE_SIZE; i++) {
    const id = page * PAGE_SIZE + i;
    records.push({ id, customer: `  Customer ${id} `, amountCents: (id * 7919) % 10_000 });
  }
  return records;
});

// Trims and lowercases names, and turns cents into units.
const transform = task({ name: "transform" }, (records) =>
  records.map((r) => ({ id: r.id, customer: r.customer.trim().toLowerCase(), amount: r.amountCents / 100 })));

// Loads the rows (here: checks them) and returns how many were loaded.
const load = task({ name: "load" }, (rows) => {
  for (const row of rows) {
    if (row.amount < 0) throw new RangeError(`row ${row.id} has a negative amount`);
  }
  return rows.length;
});

export const etl = flow({ name: "etl", logPrints: true, description: "Extracts `n` pages, transforms and loads them, and reports.",
  parameters: { n: { type: "integer", minimum: 1, maximum: 100, default: 5 } } }, (n = 5) => {
  const logger = getRunLogger();
  const pages = extract.map([...Array(n).keys()]);
  const records = pages.result().flat();
  logger.info(`extracted ${records.length} records from ${n} pages`);

  const rows = transform(records);
  const loaded = load(rows);
  logger.info(`loaded ${loaded} rows`);

  const total = rows.reduce((sum, row) => sum + row.amount, 0);
  const report = `# ETL report\n\n| pages | rows | total amount |\n|---|---|---|\n| ${n} | ${loaded} | ${total.toFixed(2)} |\n`;
  createMarkdownArtifact(report, { key: "etl-report", description: "Summary of the ETL run" });
  createTableArtifact(rows, { key: "etl-table", description: "The loaded rows" });
  return loaded;
});
