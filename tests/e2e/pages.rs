//! Every list of the API pages the same way: `limit` from 1 to 500 (else a 400), a cursor
//! only the list that issued it takes (else a 400, never a page of something else), and
//! paging through a list gives each item exactly once, in the order of the whole list.

use crate::support::server::{TestServer, Ws, send};
use serde_json::{Value, json};
use std::collections::HashSet;

const BASIC: &str = "guest_basic";

/// What identifies an item of a list, to compare pages with the whole list.
fn ident(item: &Value) -> String {
    for field in ["id", "digest", "name", "tag", "seq", "version_no"] {
        if let Some(v) = item.get(field)
            && !v.is_null()
        {
            return v.to_string();
        }
    }
    panic!("an item without an identity: {item}")
}

/// Every item of `path` (which may have a query already), pages of `limit`, following
/// `next_cursor`.
async fn walk(s: &TestServer, key: &str, path: &str, limit: usize) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = s.get(&url, key).await;
        assert_eq!(status, 200, "{url}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit, "{url}: {page}");
        out.extend(items.iter().map(ident));
        match page["next_cursor"].as_str() {
            Some(c) => {
                // A page with a cursor after it is full: no empty page at the end.
                assert_eq!(items.len(), limit, "{url}: {page}");
                cursor = Some(c.to_owned());
            }
            None => return out,
        }
    }
    panic!("{path} never ended")
}

/// Sets up a workspace where every list has at least `N` items; returns the list
/// routes (with a run's id and such filled in) and how many items each has.
async fn populate(s: &TestServer, ws: &Ws) -> Vec<(String, usize)> {
    let key = ws.key.as_str();
    let basic = s.upload(key, BASIC).await;
    let hello = s.upload(key, "hello").await;
    let etl = s.upload(key, "etl").await;
    for name in ["k1", "k2"] {
        let (status, body) = s.post("/api/keys", key, json!({"name": name})).await;
        assert_eq!(status, 201, "{body}");
    }
    for (name, component, flow, params) in [
        ("a-map", &basic, "map_flow", json!({"n": 4})),
        ("b-flood", &basic, "log_flood", json!({"lines": 7})),
        ("c-etl", &etl, "etl", json!({"n": "2"})),
    ] {
        s.deploy(
            key,
            json!({"name": name, "component": component, "flow": flow, "parameters": params}),
        )
        .await;
    }
    // Versions: the deployment moves to another component and back.
    for change in [
        json!({"component": hello, "flow": "hello", "parameters": {}}),
        json!({"component": basic, "flow": "map_flow", "parameters": {"n": 4}}),
    ] {
        let (status, body) = send(
            s.req(reqwest::Method::PATCH, "/api/deployments/a-map", key)
                .json(&change),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let mut runs = vec![];
    for name in ["a-map", "b-flood", "c-etl", "c-etl"] {
        let (status, run) = s
            .post(&format!("/api/deployments/{name}/runs"), key, json!({}))
            .await;
        assert_eq!(status, 201, "{run}");
        runs.push(run["id"].as_str().unwrap().to_owned());
    }
    for id in &runs {
        let run = s.wait_final(key, id).await;
        assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    }
    for i in 0..3 {
        let put =
            |path: String, body: Value| send(s.req(reqwest::Method::PUT, &path, key).json(&body));
        assert_eq!(
            put(format!("/api/variables/v{i}"), json!({"value": [i]}))
                .await
                .0,
            200
        );
        assert_eq!(
            put(format!("/api/secrets/s{i}"), json!({"value": "x"}))
                .await
                .0,
            204
        );
        assert_eq!(
            put(format!("/api/concurrency-limits/t{i}"), json!({"limit": i}))
                .await
                .0,
            200
        );
        let (status, body) = s
            .post(
                "/api/deployments/a-map/schedules",
                key,
                json!({"interval_seconds": 3600 + i, "active": false}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // Pools named to sort on both sides of the `default` pool, which has no row.
    for name in ["alpha", "zulu"] {
        let (status, body) = s.post("/api/pools", key, json!({"name": name})).await;
        assert_eq!(status, 201, "{body}");
    }
    let (map_run, flood_run, etl_run) = (&runs[0], &runs[1], &runs[2]);
    vec![
        ("/api/keys".into(), 3),
        ("/api/components".into(), 3),
        ("/api/deployments".into(), 3),
        ("/api/deployments/a-map/versions".into(), 3),
        ("/api/deployments/a-map/schedules".into(), 3),
        ("/api/flow-runs".into(), 4),
        ("/api/flow-runs?deployment=c-etl".into(), 2),
        ("/api/task-runs".into(), 4),
        (format!("/api/flow-runs/{map_run}/task-runs"), 4),
        (format!("/api/flow-runs/{flood_run}/logs"), 7),
        (format!("/api/flow-runs/{etl_run}/artifacts"), 2),
        ("/api/artifacts?key=etl-report".into(), 2),
        ("/api/variables".into(), 3),
        ("/api/secrets".into(), 3),
        ("/api/pools".into(), 3),
        ("/api/concurrency-limits".into(), 3),
    ]
}

#[tokio::test]
async fn paging_through_every_list_gives_each_item_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("pages").await;
    let lists = populate(&s, &ws).await;
    for (path, at_least) in &lists {
        let whole = walk(&s, &ws.key, path, 500).await;
        assert!(whole.len() >= *at_least, "{path}: {whole:?}");
        let unique: HashSet<&String> = whole.iter().collect();
        assert_eq!(
            unique.len(),
            whole.len(),
            "{path} repeats an item: {whole:?}"
        );
        for limit in [1, 2, 3] {
            assert_eq!(
                walk(&s, &ws.key, path, limit).await,
                whole,
                "{path} in pages of {limit}"
            );
        }
    }
    // The default pool has its place in name order among pools with rows.
    let pools = walk(&s, &ws.key, "/api/pools", 1).await;
    assert_eq!(pools, ["\"alpha\"", "\"default\"", "\"zulu\""]);
    s.stop().await;
}

#[tokio::test]
async fn every_list_refuses_a_bad_limit_or_a_cursor_it_did_not_issue() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("bad-pages").await;
    let lists = populate(&s, &ws).await;
    let problem = |path: String| {
        let s = &s;
        let key = ws.key.clone();
        async move {
            let res = s
                .req(reqwest::Method::GET, &path, &key)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
            let body: Value = res.json().await.unwrap();
            assert_eq!(
                (status, ct.as_str()),
                (400, "application/problem+json"),
                "{path}: {body}"
            );
            body["detail"].as_str().unwrap().to_owned()
        }
    };
    // A cursor of each list, to try on every other.
    let mut cursors = vec![];
    for (path, _) in &lists {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (_, page) = s.get(&format!("{path}{sep}limit=1"), &ws.key).await;
        if let Some(c) = page["next_cursor"].as_str() {
            cursors.push((path.clone(), c.to_owned()));
        }
    }
    assert!(cursors.len() >= 14, "{cursors:?}");
    for (path, _) in &lists {
        let sep = if path.contains('?') { '&' } else { '?' };
        for limit in ["0", "501", "-1", "lots", "1.5", ""] {
            let detail = problem(format!("{path}{sep}limit={limit}")).await;
            assert!(detail.contains("limit"), "{path} limit={limit}: {detail}");
        }
        for limit in ["1", "500"] {
            let (status, body) = s.get(&format!("{path}{sep}limit={limit}"), &ws.key).await;
            assert_eq!(status, 200, "{path} limit={limit}: {body}");
        }
        for made_up in ["", "x", "abc.def", "eyJ4IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA", "0"] {
            let detail = problem(format!("{path}{sep}cursor={made_up}")).await;
            assert!(
                detail.contains("cursor"),
                "{path} cursor={made_up}: {detail}"
            );
        }
        let route = |p: &str| p.split('?').next().unwrap().to_owned();
        for (other, cursor) in &cursors {
            if route(other) != route(path) {
                problem(format!("{path}{sep}cursor={cursor}")).await;
            }
        }
    }
    // A cursor of one run's logs is no cursor of another run's; one of one workspace
    // is no cursor in another.
    let (_, page) = s.get("/api/flow-runs?limit=10", &ws.key).await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let (_, logs) = s
        .get(&format!("/api/flow-runs/{}/logs?limit=1", ids[2]), &ws.key)
        .await;
    let cursor = logs["next_cursor"].as_str().unwrap();
    problem(format!("/api/flow-runs/{}/logs?cursor={cursor}", ids[0])).await;
    let other = s.workspace("bad-pages-other").await;
    let (_, runs) = s.get("/api/keys?limit=1", &ws.key).await;
    let cursor = runs["next_cursor"].as_str().unwrap();
    let res = s
        .req(
            reqwest::Method::GET,
            &format!("/api/keys?cursor={cursor}"),
            &other.key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // `limit` or `cursor` twice, and unknown parameters, are refused too.
    problem("/api/deployments?limit=1&limit=2".into()).await;
    problem("/api/deployments?surprise=1".into()).await;
    s.stop().await;
}
