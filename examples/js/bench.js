// Benchmark flows, the same workloads as the Rust `examples/bench` and the Python
// `examples/python/bench.py`: the task bodies do almost nothing, so a run measures
// orchestration.
import { flow, task } from "weir";

const addOne = task({ name: "add_one" }, (x) => x + 1);
const square = task({ name: "square" }, (x) => x * x);

// `n` tasks in sequence, each feeding the next; returns `n`.
export const chain = flow({ name: "chain" }, (n) => {
  let x = 0;
  for (let i = 0; i < n; i++) x = addOne(x);
  return x;
});

// `n` concurrent tasks with `map`; returns the sum of the squares.
export const mapped = flow({ name: "mapped" }, (n) =>
  square.map([...Array(n).keys()]).result().reduce((a, b) => a + b, 0));

// Ten tasks in sequence; returns 10.
export const ten = flow({ name: "ten" }, () => {
  let x = 0;
  for (let i = 0; i < 10; i++) x = addOne(x);
  return x;
});
