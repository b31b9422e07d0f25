// Prefect's classic in JavaScript: a flow that greets through a task.
import { flow, task } from "weir";

const printHello = task({ name: "print-hello", description: "Prints a greeting and returns it." }, (name) => {
  const greeting = `Hello, ${name}!`;
  console.log(greeting);
  return greeting;
});

export const hello = flow(
  { name: "hello", logPrints: true, description: "Greets someone, the world by default." },
  (name = "world") => printHello(name),
);
