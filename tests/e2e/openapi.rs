//! The OpenAPI document tells the truth about the routes: parameters where they are
//! read, the same paging on every list, errors as problem details with every status a
//! route can answer, any-JSON values not claimed to be objects, request bodies with
//! their constraints (and unknown fields refused, by the document and the server alike).

use crate::support::server::{TestServer, send};
use serde_json::{Value, json};

async fn document(s: &TestServer) -> Value {
    let (status, doc) = send(s.client.get(format!("{}/api/openapi.json", s.url))).await;
    assert_eq!(status, 200);
    doc
}

/// Every operation: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    out
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name}");
    s
}

#[tokio::test]
async fn the_document_declares_parameters_where_they_are_read_and_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let doc = document(&s).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let ops = operations(&doc);
    let mut lists = 0;
    let mut ids = std::collections::HashSet::new();
    for (path, method, op) in &ops {
        let label = format!("{method} {path}");
        assert!(
            ids.insert(op["operationId"].as_str().unwrap().to_owned()),
            "{label}: operationId repeated"
        );
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        for p in &params {
            let (name, at) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
            let in_path = path.contains(&format!("{{{name}}}"));
            match at {
                "path" => assert!(in_path, "{label}: {name} is no path parameter"),
                "query" => assert!(!in_path, "{label}: {name} is in the path"),
                "header" => {}
                other => panic!("{label}: {name} in {other}"),
            }
        }
        // Every path template parameter is declared, in the path.
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = &segment[1..segment.len() - 1];
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                "{label}: {name} undeclared"
            );
        }
        // Lists: limit and cursor in the query, limit bounded as the server bounds it.
        let is_list = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .is_some_and(|r| r.contains("/Page_"));
        if is_list {
            lists += 1;
            let limit = params
                .iter()
                .find(|p| p["name"] == "limit")
                .unwrap_or_else(|| panic!("{label}: no limit"));
            assert_eq!(limit["in"], "query", "{label}");
            assert_eq!(
                (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
                (&json!(1), &json!(500)),
                "{label}: {limit}"
            );
            let cursor = params
                .iter()
                .find(|p| p["name"] == "cursor")
                .unwrap_or_else(|| panic!("{label}: no cursor"));
            assert_eq!(cursor["in"], "query", "{label}");
        }
        // Errors: problem details, with the statuses every route shares.
        let responses = op["responses"].as_object().unwrap();
        for (status, r) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let content = r["content"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{label} {status}: no content"));
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{label} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{label} {status}"
                );
            }
        }
        let has = |status: &str| responses.contains_key(status);
        assert!(has("429"), "{label}: no 429");
        assert_eq!(has("503"), path != "/health", "{label}: 503");
        // A key is needed, or (a webhook) a signature.
        let signed = path.starts_with("/hooks/");
        assert_eq!(
            has("401"),
            op.get("security").is_some() || signed,
            "{label}: 401"
        );
        if !params.is_empty() || op.get("requestBody").is_some() {
            assert!(has("400"), "{label}: no 400");
        }
        if op.get("requestBody").is_some() {
            assert!(has("413") && has("422"), "{label}: no 413 or 422");
        }
    }
    assert_eq!(lists, 21, "every list");
    // The query parameters of the filtered lists are in the query.
    let flow_runs = &doc["paths"]["/api/flow-runs"]["get"]["parameters"];
    for name in [
        "state",
        "deployment",
        "flow",
        "tag",
        "name",
        "top_level",
        "since",
        "until",
        "limit",
        "cursor",
    ] {
        let p = flow_runs
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(p["in"], "query", "{name}");
    }
    s.stop().await;
}

#[tokio::test]
async fn the_document_states_what_bodies_take_and_the_server_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let doc = document(&s).await;
    // Values that may be any JSON are not declared objects.
    for (name, field) in [
        ("FlowRun", "result"),
        ("TaskRun", "result"),
        ("Artifact", "data"),
        ("Variable", "value"),
        ("PutVariable", "value"),
    ] {
        let f = &schema(&doc, name)["properties"][field];
        assert!(f.is_object(), "{name}.{field}");
        assert_ne!(f.get("type"), Some(&json!("object")), "{name}.{field}: {f}");
    }
    // Names: one pattern, as the server checks them.
    let pattern = schema(&doc, "CreateDeployment")["properties"]["name"]["pattern"]
        .as_str()
        .unwrap()
        .to_owned();
    for name in ["CreateWorkspace", "CreatePool"] {
        assert_eq!(
            schema(&doc, name)["properties"]["name"]["pattern"],
            pattern.as_str(),
            "{name}"
        );
    }
    // Unknown fields refused.
    for name in [
        "CreateDeployment",
        "UpdateDeployment",
        "CreateRun",
        "CreatePool",
        "PutLimit",
        "PutVariable",
        "CreateWorkspace",
        "CronSchedule",
        "ScheduleChange",
    ] {
        assert_eq!(schema(&doc, name)["additionalProperties"], false, "{name}");
    }
    // A new schedule is one of three kinds.
    let kinds = schema(&doc, "NewSchedule")["oneOf"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(kinds, 3);
    assert_eq!(
        schema(&doc, "PutLimit")["properties"]["limit"]["minimum"],
        0
    );

    // The server refuses what the document refuses.
    let ws = s.workspace("doc").await;
    for name in [".", "..", "a b", &"x".repeat(101), ""] {
        let (status, body) = s.post("/api/pools", &ws.key, json!({"name": name})).await;
        assert_eq!(status, 422, "pool {name:?}: {body}");
        let (status, body) = s.post("/api/keys", &ws.key, json!({"name": name})).await;
        assert_eq!(status, 422, "key {name:?}: {body}");
    }
    let (status, body) = send(
        s.req(
            reqwest::Method::PUT,
            "/api/concurrency-limits/a%20b",
            &ws.key,
        )
        .json(&json!({"limit": 1})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    for body in [
        json!({"cron": "0 9 * * *", "surprise": 1}),
        json!({"cron": "0 9 * * *", "interval_seconds": 60}),
        json!({"interval_seconds": 60, "active": "yes"}),
    ] {
        let (status, p) = s
            .post("/api/schedules/preview", &ws.key, body.clone())
            .await;
        assert_eq!(status, 422, "{body}: {p}");
    }
    let (status, p) = s
        .post(
            "/api/schedules/preview",
            &ws.key,
            json!({"rrule": "FREQ=DAILY", "count": 2}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["fire_times"].as_array().unwrap().len(), 2);
    s.stop().await;
}
