"""A Python client generated from Weir's OpenAPI document, used as a user would.

Run by scripts/api-fuzz after it generated the client with openapi-python-client:

    client_check.py URL KEY DIGEST PACKAGE

Creates a deployment of the hello example (DIGEST, uploaded to the workspace of KEY),
triggers a run, waits for it to complete and reads its logs page by page, asserting
what each step returns. Exits non-zero on the first thing that is not so.
"""

import importlib
import sys
import time


def main() -> None:
    url, key, digest, package = sys.argv[1:5]
    client_module = importlib.import_module(package)
    models = importlib.import_module(f"{package}.models")

    def op(tag: str, name: str):
        return importlib.import_module(f"{package}.api.{tag}.{tag}_{name}")

    client = client_module.AuthenticatedClient(base_url=url, token=key, raise_on_unexpected_status=True)

    created = op("deployments", "create").sync_detailed(
        client=client,
        body=models.CreateDeployment.from_dict(
            {"name": "client-hello", "component": digest, "flow": "hello", "tags": ["client"]}
        ),
    )
    assert created.status_code == 201, (created.status_code, created.content)
    deployment = created.parsed
    assert isinstance(deployment, models.Deployment), deployment
    assert deployment.name == "client-hello" and deployment.flow == "hello", deployment

    # A name the document's pattern refuses is refused by the server too, as a problem.
    refused = op("deployments", "create").sync_detailed(
        client=client,
        body=models.CreateDeployment.from_dict({"name": "..", "component": digest, "flow": "hello"}),
    )
    assert refused.status_code == 422, (refused.status_code, refused.content)
    assert isinstance(refused.parsed, models.Problem), refused.parsed
    assert refused.parsed.status == 422, refused.parsed

    triggered = op("runs", "create").sync_detailed(
        id="client-hello",
        client=client,
        body=models.CreateRun.from_dict({"parameters": {"name": "Ada"}, "tags": ["from-python"]}),
    )
    assert triggered.status_code == 201, (triggered.status_code, triggered.content)
    run = triggered.parsed
    assert run.deployment_id == deployment.id, run
    assert sorted(run.tags) == ["client", "from-python"], run.tags  # the deployment's and its own

    deadline = time.monotonic() + 60
    while True:
        run = op("runs", "get").sync(id=run.id, client=client)
        if run.state.type_ in ("COMPLETED", "FAILED", "CANCELLED", "CRASHED"):
            break
        assert time.monotonic() < deadline, f"the run is still {run.state.type_}"
        time.sleep(0.1)
    assert run.state.type_ == "COMPLETED", run.state
    assert run.result == "Hello, Ada!", run.result

    # The logs, one line a page: every line once, in order, then no cursor.
    lines, cursor, pages = [], None, 0
    while True:
        kwargs = {"cursor": cursor} if cursor else {}
        page = op("runs", "logs").sync(id=run.id, client=client, limit=1, **kwargs)
        pages += 1
        lines.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            break
        assert pages < 1000, "the logs never end"
    messages = [line.message for line in lines]
    assert "Hello, Ada!" in messages, messages
    seqs = [line.seq for line in lines]
    assert seqs == sorted(set(seqs)), seqs
    assert pages == len(lines) or pages == len(lines) + 1, (pages, len(lines))

    # The deployment is in the workspace's list.
    listed = op("deployments", "list").sync(client=client, limit=500)
    assert "client-hello" in [d.name for d in listed.items], listed
    print(f"client_check: deployment, run {run.id} and {len(lines)} log lines in {pages} pages: ok")


if __name__ == "__main__":
    main()
