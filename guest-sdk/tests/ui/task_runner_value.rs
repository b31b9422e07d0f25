use weir_sdk::flow;

weir_sdk::export!();

#[flow(task_runner = ThreadPoolTaskRunner(0))]
fn zero() {}

#[flow(task_runner = DaskTaskRunner)]
fn dask() {}

#[task(task_runner = SequentialTaskRunner)]
fn on_task() {}

use weir_sdk::task;

fn main() {}
