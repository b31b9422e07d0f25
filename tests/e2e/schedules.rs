//! Schedules through the real server with a clock moved by hand: exactly once across
//! restarts and across two schedulers on one database, catch-up and overlap policies,
//! backfill, previews across daylight-saving changes, bad specs refused.

use crate::support::server::{TestServer, Ws, send};
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use weir::schedule::{Clock, ManualClock, SchedulerConfig};

/// Now, in whole seconds (stored times keep microseconds).
fn whole_now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn start(dir: &std::path::Path, clock: &Arc<ManualClock>, horizon_s: u64) -> TestServer {
    let clock = clock.clone();
    TestServer::start_with(dir, move |c| {
        c.clock = clock;
        c.run_scheduler = false;
        c.scheduler = SchedulerConfig {
            horizon: Duration::from_secs(horizon_s),
            grace: Duration::from_secs(5),
            ..SchedulerConfig::default()
        };
    })
    .await
}

async fn deployment(s: &TestServer, name: &str, flow: &str, params: Value) -> Ws {
    let ws = s.workspace(name).await;
    let digest = s.upload(&ws.key, "guest_basic").await;
    s.deploy(
        &ws.key,
        json!({"name": "d", "component": digest, "flow": flow, "parameters": params}),
    )
    .await;
    ws
}

/// Expected start times of the deployment's runs.
async fn fire_times(s: &TestServer, key: &str) -> Vec<DateTime<Utc>> {
    let (_, page) = s.get("/api/flow-runs?limit=500", key).await;
    let mut t: Vec<DateTime<Utc>> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["expected_start"].as_str().map(at))
        .collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_follow_daylight_saving_rules_in_two_zones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-01T00:00:00Z"));
    let s = start(dir.path(), &clock, 60).await;
    let ws = s.workspace("dst").await;
    let preview = |body: Value| {
        let s = &s;
        let key = ws.key.clone();
        async move {
            let (status, p) = s.post("/api/schedules/preview", &key, body).await;
            assert_eq!(status, 200, "{p}");
            p["fire_times"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| at(t.as_str().unwrap()))
                .collect::<Vec<_>>()
        }
    };
    // Berlin springs forward on 2026-03-29 (02:00 -> 03:00): 02:30 runs once, at 03:00 CEST.
    let t = preview(json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin", "after": "2026-03-27T12:00:00Z", "count": 4})).await;
    assert_eq!(
        t,
        [
            at("2026-03-28T01:30:00Z"),
            at("2026-03-29T01:00:00Z"),
            at("2026-03-30T00:30:00Z"),
            at("2026-03-31T00:30:00Z")
        ]
    );
    // New York falls back on 2026-11-01 (02:00 -> 01:00): 01:30 runs once, the first time.
    let t = preview(json!({"cron": "30 1 * * *", "timezone": "America/New_York", "after": "2026-10-31T12:00:00Z", "count": 3})).await;
    assert_eq!(
        t,
        [
            at("2026-11-01T05:30:00Z"),
            at("2026-11-02T06:30:00Z"),
            at("2026-11-03T06:30:00Z")
        ]
    );
    // New York springs forward on 2026-03-08: 02:30 runs once, at 03:00 EDT.
    let t = preview(json!({"cron": "30 2 * * *", "timezone": "America/New_York", "after": "2026-03-07T12:00:00Z", "count": 2})).await;
    assert_eq!(t, [at("2026-03-08T07:00:00Z"), at("2026-03-09T06:30:00Z")]);
    // Berlin falls back on 2026-10-25: 02:30 runs once, at the first (summer time) one.
    let t = preview(json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin", "after": "2026-10-24T12:00:00Z", "count": 2})).await;
    assert_eq!(t, [at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z")]);
    // RRULE and interval previews.
    let t = preview(json!({"rrule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "timezone": "America/New_York", "after": "2026-03-07T00:00:00Z", "count": 2})).await;
    assert_eq!(t, [at("2026-03-07T14:00:00Z"), at("2026-03-08T13:00:00Z")]);
    let t = preview(json!({"interval_seconds": 90, "anchor_date": "2026-01-01T00:00:00Z", "after": "2026-01-01T00:02:00Z", "count": 2})).await;
    assert_eq!(t, [at("2026-01-01T00:03:00Z"), at("2026-01-01T00:04:30Z")]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_are_refused_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let s = start(dir.path(), &clock, 60).await;
    let ws = deployment(&s, "bad-specs", "map_flow", json!({"n": 1})).await;
    for (body, needle) in [
        (json!({"cron": "61 * * * *"}), "cron"),
        (
            json!({"cron": "0 9 * * MON-FRI", "timezone": "Mars/Olympus"}),
            "Mars/Olympus",
        ),
        (json!({"interval_seconds": 0}), "interval"),
        (json!({"rrule": "FREQ=SOMETIMES"}), "RRULE"),
        (
            json!({"cron": "* * * * *", "overlap": "sometimes"}),
            "overlap",
        ),
        (json!({"timezone": "UTC"}), "cron"),
        // A field no schedule takes is refused even when null, and so is one of
        // another kind of schedule.
        (json!({"interval_seconds": 1.5, "colour": null}), "colour"),
        (
            json!({"cron": "* * * * *", "anchor_date": null}),
            "anchor_date",
        ),
        (json!({"cron": "* * * * *", "count": 3}), "count"),
    ] {
        let (status, p) = s
            .post("/api/deployments/d/schedules", &ws.key, body.clone())
            .await;
        assert_eq!(status, 422, "{body}: {p}");
        assert!(p.to_string().contains(needle), "{body}: {p}");
    }
    for (body, needle) in [
        (json!({"interval_seconds": 1.5, "colour": null}), "colour"),
        (
            json!({"rrule": "FREQ=DAILY", "interval_seconds": null}),
            "interval_seconds",
        ),
    ] {
        let (status, p) = s
            .post("/api/schedules/preview", &ws.key, body.clone())
            .await;
        assert_eq!(status, 422, "{body}: {p}");
        assert!(p.to_string().contains(needle), "{body}: {p}");
    }
    let (status, p) = s
        .patch("/api/schedules/none", &ws.key, json!({"colour": null}))
        .await;
    assert_eq!(status, 422, "{p}");
    let (_, list) = s.get("/api/deployments/d/schedules", &ws.key).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_horizon_neither_double_fires_nor_loses_a_fire() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = whole_now() + Span::days(1);
    let clock = ManualClock::new(t0);
    let s = start(dir.path(), &clock, 60).await;
    let ws = deployment(&s, "restart", "map_flow", json!({"n": 1})).await;
    let (status, sched) = s
        .post(
            "/api/deployments/d/schedules",
            &ws.key,
            json!({"interval_seconds": 10, "anchor_date": t0.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 201, "{sched}");
    assert_eq!(s.tick().await, 6, "t0+10 .. t0+60");
    assert_eq!(s.tick().await, 0, "a second tick creates nothing");
    s.stop().await;
    clock.advance(Span::seconds(30));
    let s = start(dir.path(), &clock, 60).await;
    assert_eq!(s.tick().await, 3, "only t0+70 .. t0+90 are new");
    let times = fire_times(&s, &ws.key).await;
    let expected: Vec<_> = (1..=9).map(|k| t0 + Span::seconds(10 * k)).collect();
    assert_eq!(times, expected);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_on_one_database_fire_each_time_once() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = whole_now() + Span::days(1);
    let clock = ManualClock::new(t0);
    let a = start(dir.path(), &clock, 60).await;
    let ws = deployment(&a, "two", "map_flow", json!({"n": 1})).await;
    a.post(
        "/api/deployments/d/schedules",
        &ws.key,
        json!({"interval_seconds": 5, "anchor_date": t0.to_rfc3339()}),
    )
    .await;
    let b = start(dir.path(), &clock, 60).await;
    let mut total = 0;
    for _ in 0..5 {
        let (x, y) = tokio::join!(a.tick(), b.tick());
        total += x + y;
        clock.advance(Span::seconds(20));
    }
    let times = fire_times(&a, &ws.key).await;
    let unique: HashSet<_> = times.iter().collect();
    assert_eq!(unique.len(), times.len(), "a fire time has two runs");
    assert_eq!(
        times.len(),
        total,
        "the count of created runs matches the runs"
    );
    assert_eq!(
        times.len(),
        (60 + 80) / 5,
        "every fire time up to the last horizon has a run"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_policies_after_downtime() {
    for (policy, expected_missed) in [("skip", 0), ("latest", 1), ("all", 4)] {
        let dir = tempfile::tempdir().unwrap();
        let t0 = whole_now() + Span::days(1);
        let clock = ManualClock::new(t0);
        let s = start(dir.path(), &clock, 60).await;
        let ws = deployment(
            &s,
            &format!("catchup-{policy}"),
            "map_flow",
            json!({"n": 1}),
        )
        .await;
        s.post("/api/deployments/d/schedules", &ws.key,
            json!({"interval_seconds": 60, "anchor_date": t0.to_rfc3339(), "catchup": policy, "catchup_limit": 4})).await;
        // Down for ten minutes: no tick saw t0+1min .. t0+10min.
        clock.advance(Span::minutes(10) + Span::seconds(30));
        s.tick().await;
        let now = clock.now();
        let times = fire_times(&s, &ws.key).await;
        let missed = times
            .iter()
            .filter(|t| **t < now - Span::seconds(5))
            .count();
        let upcoming = times.iter().filter(|t| **t >= now).count();
        assert_eq!(missed, expected_missed, "{policy}: {times:?}");
        assert_eq!(
            upcoming, 1,
            "{policy}: the next fire time within the horizon"
        );
        if policy != "skip" {
            assert!(
                times.contains(&(t0 + Span::minutes(10))),
                "{policy}: the latest missed one is kept"
            );
        }
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_policies_when_the_previous_run_is_still_going() {
    for policy in ["allow", "skip", "cancel", "queue"] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc::now());
        let s = start(dir.path(), &clock, 2).await;
        let ws = deployment(
            &s,
            &format!("overlap-{policy}"),
            "nap",
            json!({"millis": 700}),
        )
        .await;
        let t0 = Utc::now() + Span::milliseconds(300);
        clock.set(Utc::now());
        s.post(
            "/api/deployments/d/schedules",
            &ws.key,
            json!({"interval_seconds": 0.5, "anchor_date": t0.to_rfc3339(), "overlap": policy}),
        )
        .await;
        // Runs every 0.5 s for 2 s, each taking 0.7 s: each one overlaps the previous.
        s.tick().await;
        let mut max_running = 0;
        let mut states = Vec::new();
        for _ in 0..400 {
            let (_, page) = s.get("/api/flow-runs?limit=100", &ws.key).await;
            let runs = page["items"].as_array().unwrap().clone();
            max_running = max_running.max(
                runs.iter()
                    .filter(|r| r["state"]["type"] == "RUNNING")
                    .count(),
            );
            states = runs
                .iter()
                .map(|r| {
                    format!(
                        "{}/{}",
                        r["state"]["type"].as_str().unwrap(),
                        r["state"]["name"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>();
            if !runs.is_empty()
                && runs.iter().all(|r| {
                    matches!(
                        r["state"]["type"].as_str().unwrap(),
                        "COMPLETED" | "CANCELLED" | "FAILED"
                    )
                })
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let count = |s: &str| states.iter().filter(|x| x.as_str() == s).count();
        assert_eq!(states.len(), 4, "{policy}: {states:?}");
        match policy {
            "allow" => {
                assert!(max_running >= 2, "allow: runs overlap");
                assert_eq!(count("COMPLETED/Completed"), 4, "{states:?}");
            }
            "skip" => {
                assert!(max_running <= 1, "skip: never two at once");
                assert!(count("CANCELLED/Skipped") >= 1, "{states:?}");
                assert!(count("COMPLETED/Completed") >= 1, "{states:?}");
            }
            "cancel" => {
                assert!(count("CANCELLED/Cancelled") >= 1, "{states:?}");
                assert!(
                    count("COMPLETED/Completed") >= 1,
                    "the last one completes: {states:?}"
                );
            }
            _ => {
                assert!(max_running <= 1, "queue: never two at once");
                assert_eq!(
                    count("COMPLETED/Completed"),
                    4,
                    "queue: all run, in turn: {states:?}"
                );
            }
        }
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_creates_past_runs_once_and_pause_resume_work() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let s = start(dir.path(), &clock, 60).await;
    let ws = deployment(&s, "backfill", "map_flow", json!({"n": 2})).await;
    let (_, sched) = s
        .post(
            "/api/deployments/d/schedules",
            &ws.key,
            json!({"cron": "0 * * * *", "timezone": "Europe/Berlin", "parameters": {"n": 3}}),
        )
        .await;
    let id = sched["id"].as_str().unwrap();
    let body = json!({"start": "2026-06-01T00:00:00Z", "end": "2026-06-01T05:00:00Z"});
    let (status, first) = s
        .post(
            &format!("/api/schedules/{id}/backfill"),
            &ws.key,
            body.clone(),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let ids: Vec<String> = first["flow_run_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 6, "00:00 .. 05:00 inclusive");
    for id in &ids {
        let run = s.wait_final(&ws.key, id).await;
        assert_eq!(
            run["result"], 5,
            "the schedule's parameters are used: {run}"
        );
    }
    let (_, again) = s
        .post(&format!("/api/schedules/{id}/backfill"), &ws.key, body)
        .await;
    assert_eq!(again["flow_run_ids"].as_array().unwrap().len(), 6);
    let again: Vec<String> = again["flow_run_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        again, ids,
        "a second backfill of the range creates nothing new"
    );

    // Pause: the schedule stays, inactive, and fires nothing; resume brings it back.
    let (status, paused) = s
        .post(&format!("/api/schedules/{id}/pause"), &ws.key, json!({}))
        .await;
    assert_eq!((status, paused["active"].as_bool()), (200, Some(false)));
    assert_eq!(s.tick().await, 0);
    let (_, resumed) = s
        .post(&format!("/api/schedules/{id}/resume"), &ws.key, json!({}))
        .await;
    assert_eq!(resumed["active"], true);
    assert!(!resumed["next"].as_array().unwrap().is_empty());
    let (status, _) = send(s.req(
        reqwest::Method::DELETE,
        &format!("/api/schedules/{id}"),
        &ws.key,
    ))
    .await;
    assert_eq!(status, 204);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_can_start_a_run_of_a_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let s = start(dir.path(), &clock, 60).await;
    let ws = deployment(&s, "launch", "map_flow", json!({"n": 1})).await;
    let digest = s.upload(&ws.key, "guest_basic").await;
    s.deploy(&ws.key, json!({"name": "launcher", "component": digest, "flow": "launcher", "parameters": {"target": "d", "n": 4}})).await;
    let (_, run) = s
        .post("/api/deployments/launcher/runs", &ws.key, json!({}))
        .await;
    let run = s.wait_final(&ws.key, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    let child = run["result"].as_str().unwrap();
    let child = s.wait_final(&ws.key, child).await;
    assert_eq!(child["result"], 14);
    assert_eq!(child["flow"], "map-flow");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_not_started_by_its_time_shows_as_late() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let s = start(dir.path(), &clock, 60).await;
    let ws = s.workspace("late").await;
    let digest = s.upload(&ws.key, "guest_basic").await;
    s.post(
        "/api/pools",
        &ws.key,
        json!({"name": "held", "paused": true}),
    )
    .await;
    s.deploy(&ws.key, json!({"name": "d", "component": digest, "flow": "map_flow", "parameters": {"n": 1}, "pool": "held"})).await;
    let (_, run) = s.post("/api/deployments/d/runs", &ws.key, json!({})).await;
    let id = run["id"].as_str().unwrap();
    // Not started 5 s after its time: the executor reads the server's clock, which
    // moves on here instead of the test waiting.
    let late = s
        .wait_for(&ws.key, id, |r| {
            clock.advance(chrono::Duration::seconds(6));
            r["state"]["name"] == "Late"
        })
        .await;
    assert_eq!(late["state"]["type"], "SCHEDULED");
    send(
        s.req(reqwest::Method::PATCH, "/api/pools/held", &ws.key)
            .json(&json!({"paused": false})),
    )
    .await;
    let run = s.wait_final(&ws.key, id).await;
    let names: Vec<&str> = run["state_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Scheduled", "Late", "Pending", "Running", "Completed"]
    );
    s.stop().await;
}
