-- Two flows of one component may share a name when their functions differ (Prefect's
-- entrypoints): a run records the function it executes, which finds its flow again on a
-- retry, a resume or a takeover. NULL: the flow's name is unique and names it.

ALTER TABLE flow_runs ADD COLUMN flow_function TEXT;
