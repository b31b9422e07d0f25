// Prefect's task runners: how many of the task runs a flow submits run at once (the host
// keeps the bound, in submission order). `flow({ taskRunner: new SequentialTaskRunner() }, fn)`.

/** At most `maxWorkers` submitted task runs at once (`undefined`: the server's bound). */
export class ThreadPoolTaskRunner {
  constructor(maxWorkers) {
    if (maxWorkers !== undefined && (!Number.isInteger(maxWorkers) || maxWorkers < 1)) {
      throw new RangeError(`maxWorkers must be a positive integer, not ${maxWorkers}`);
    }
    this.maxWorkers = maxWorkers;
  }
}

/** One submitted task run at a time, in submission order. */
export class SequentialTaskRunner {
  constructor() {
    this.maxWorkers = 1;
  }
}
