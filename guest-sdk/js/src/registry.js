// The flows and tasks a component declares, by name, in the order declared.

const flows = new Map();
const tasks = new Map();

/** Records a flow or task; a second one with the same name is an error. */
export function register(kind, item) {
  const table = kind === "flow" ? flows : tasks;
  if (table.has(item.name)) {
    throw new Error(`two ${kind}s are named \`${item.name}\`: give one another name ({ name: "..." })`);
  }
  table.set(item.name, item);
}

export function allFlows() {
  return flows;
}

export function allTasks() {
  return tasks;
}
