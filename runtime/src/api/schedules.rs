//! Deployment schedules: cron, interval or RRULE in a timezone, with parameters, an
//! active flag, a catch-up and an overlap policy; pause, resume, backfill, preview.

use super::deployments::find as find_deployment;
use super::{ApiError, ApiJson, ApiResult, AppState, Auth, Page, PageQuery, Paged};
use crate::schedule::{Catchup, Overlap, ScheduleSpec};
use crate::store::{ScheduleRecord, Unstarted};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A schedule as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct Schedule {
    pub id: String,
    pub deployment_id: String,
    /// `{"type": "cron", "cron": ..., "timezone": ...}`, `{"type": "interval",
    /// "interval_seconds": ..., "anchor_date": ..., "timezone": ...}` or
    /// `{"type": "rrule", "rrule": ..., "timezone": ...}`.
    #[schema(value_type = Object)]
    pub schedule: Value,
    #[schema(value_type = Object)]
    pub parameters: Value,
    pub active: bool,
    pub catchup: Catchup,
    pub catchup_limit: i64,
    pub overlap: Overlap,
    /// The next fire times.
    pub next: Vec<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// An IANA timezone name (as `chrono-tz` knows them, in their exact case).
pub struct Timezone;

impl utoipa::PartialSchema for Timezone {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "An IANA timezone name, such as Europe/Berlin (default UTC)",
            ))
            .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
            .into()
    }
}

impl ToSchema for Timezone {}

/// The `type` of a cron schedule.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum CronType {
    Cron,
}

/// The `type` of an interval schedule.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum IntervalType {
    Interval,
}

/// The `type` of an RRULE schedule.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RruleType {
    Rrule,
}

/// Declares the body of a new schedule of one kind: its spec's fields and the policies
/// every schedule takes (for the document only: the handler reads the body as a map,
/// inferring the kind from its fields).
macro_rules! schedule_body {
    ($(#[$meta:meta])* $name:ident { $($spec:tt)* }) => {
        $(#[$meta])*
        #[derive(Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        pub struct $name {
            $($spec)*
            #[schema(value_type = Option<Timezone>)]
            pub timezone: Option<String>,
            /// Over the deployment's default parameters (default none).
            #[schema(value_type = Option<Object>)]
            pub parameters: Option<Map<String, Value>>,
            /// Whether it creates runs (default true).
            pub active: Option<bool>,
            /// Default `skip`.
            pub catchup: Option<Catchup>,
            /// Missed fire times run at most, with `catchup: all` (default 10).
            #[schema(minimum = 1, maximum = 10000)]
            pub catchup_limit: Option<i64>,
            /// Default `allow`.
            pub overlap: Option<Overlap>,
        }
    };
}

/// Declares a preview's body for one kind: a new schedule's, with `count` and `after`.
macro_rules! preview_body {
    ($(#[$meta:meta])* $name:ident { $($spec:tt)* }) => {
        schedule_body!($(#[$meta])* $name {
            $($spec)*
            /// Fire times to give (default 10).
            #[schema(minimum = 1, maximum = 1000)]
            pub count: Option<i64>,
            /// Fire times after this (default now).
            pub after: Option<DateTime<Utc>>,
        });
    };
}

schedule_body!(
    /// A cron schedule.
    CronSchedule {
        #[serde(rename = "type")]
        #[schema(value_type = Option<CronType>)]
        pub kind: Option<String>,
        /// Five fields (minute hour day-of-month month day-of-week), or six with seconds
        /// first; `@daily` and the like.
        #[schema(min_length = 1)]
        pub cron: String,
    }
);

schedule_body!(
    /// An interval schedule.
    IntervalSchedule {
        #[serde(rename = "type")]
        #[schema(value_type = Option<IntervalType>)]
        pub kind: Option<String>,
        /// Seconds between fire times (fractions allowed, up to about 292 years).
        #[schema(minimum = 0.000000001, maximum = 9200000000.0)]
        pub interval_seconds: f64,
        /// The first fire time (default 2020-01-01T00:00:00 in the timezone).
        pub anchor_date: Option<DateTime<Utc>>,
    }
);

schedule_body!(
    /// An RRULE (RFC 5545) schedule.
    RruleSchedule {
        #[serde(rename = "type")]
        #[schema(value_type = Option<RruleType>)]
        pub kind: Option<String>,
        /// The rule, with or without `RRULE:`, optionally with DTSTART, RDATE, EXDATE lines.
        #[schema(min_length = 1)]
        pub rrule: String,
    }
);

preview_body!(
    /// The fire times of a cron schedule.
    CronPreview {
        #[serde(rename = "type")]
        #[schema(value_type = Option<CronType>)]
        pub kind: Option<String>,
        #[schema(min_length = 1)]
        pub cron: String,
    }
);

preview_body!(
    /// The fire times of an interval schedule.
    IntervalPreview {
        #[serde(rename = "type")]
        #[schema(value_type = Option<IntervalType>)]
        pub kind: Option<String>,
        #[schema(minimum = 0.000000001, maximum = 9200000000.0)]
        pub interval_seconds: f64,
        pub anchor_date: Option<DateTime<Utc>>,
    }
);

preview_body!(
    /// The fire times of an RRULE schedule.
    RrulePreview {
        #[serde(rename = "type")]
        #[schema(value_type = Option<RruleType>)]
        pub kind: Option<String>,
        #[schema(min_length = 1)]
        pub rrule: String,
    }
);

/// A schedule to preview: one of the three kinds, with `count` and `after` (policies
/// are taken and play no part).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum SchedulePreview {
    #[schema(title = "cron")]
    Cron(CronPreview),
    #[schema(title = "interval")]
    Interval(IntervalPreview),
    #[schema(title = "rrule")]
    Rrule(RrulePreview),
}

/// A new schedule: one of the three kinds (`type` may be left out: the kind's own field
/// tells it), with its policies.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum NewSchedule {
    #[schema(title = "cron")]
    Cron(CronSchedule),
    #[schema(title = "interval")]
    Interval(IntervalSchedule),
    #[schema(title = "rrule")]
    Rrule(RruleSchedule),
}

/// A schedule change: any of its spec's fields (a field of another kind replaces the
/// spec: then the body must make a whole spec of that kind) and policies.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ScheduleChange {
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>, pattern = "^(cron|interval|rrule)$")]
    pub kind: Option<String>,
    #[schema(min_length = 1)]
    pub cron: Option<String>,
    #[schema(minimum = 0.000000001, maximum = 9200000000.0)]
    pub interval_seconds: Option<f64>,
    pub anchor_date: Option<DateTime<Utc>>,
    #[schema(min_length = 1)]
    pub rrule: Option<String>,
    #[schema(value_type = Option<Timezone>)]
    pub timezone: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
    pub active: Option<bool>,
    pub catchup: Option<Catchup>,
    #[schema(minimum = 1, maximum = 10000)]
    pub catchup_limit: Option<i64>,
    pub overlap: Option<Overlap>,
}

const POLICY_FIELDS: [&str; 5] = [
    "parameters",
    "active",
    "catchup",
    "catchup_limit",
    "overlap",
];

/// The fields of a schedule spec, of any kind.
const SPEC_FIELDS: [&str; 6] = [
    "type",
    "cron",
    "interval_seconds",
    "anchor_date",
    "rrule",
    "timezone",
];

/// The fields of a schedule body that are given: a `null` field is one left out (the
/// default, or no change), as the document's optional fields say. A field the body does
/// not take (a spec's, a policy's, or one of `extra`) is refused, `null` or not.
fn given(mut body: Map<String, Value>, extra: &[&str]) -> ApiResult<Map<String, Value>> {
    let unknown: Vec<String> = body
        .keys()
        .filter(|k| {
            let k = k.as_str();
            !SPEC_FIELDS.contains(&k) && !POLICY_FIELDS.contains(&k) && !extra.contains(&k)
        })
        .map(|k| format!("unknown field {k:?}"))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::invalid("Invalid schedule", unknown));
    }
    body.retain(|_, v| !v.is_null());
    Ok(body)
}

/// Refuses a spec field (`null` or not) that the kind of `spec` does not take, as a new
/// schedule's document says: `anchor_date` belongs to an interval only.
fn fields_of_its_kind(spec: &ScheduleSpec, named: &[String]) -> ApiResult<()> {
    let of_kind: &[&str] = match spec {
        ScheduleSpec::Cron { .. } => &["type", "cron", "timezone"],
        ScheduleSpec::Interval { .. } => &["type", "interval_seconds", "anchor_date", "timezone"],
        ScheduleSpec::Rrule { .. } => &["type", "rrule", "timezone"],
    };
    let foreign: Vec<String> = named
        .iter()
        .filter(|k| SPEC_FIELDS.contains(&k.as_str()) && !of_kind.contains(&k.as_str()))
        .map(|k| format!("unknown field {k:?} for this kind of schedule"))
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("Invalid schedule", foreign))
    }
}

/// Splits a schedule body into its spec and its policy fields, inferring the spec's
/// type from its fields when `type` is left out.
fn parse_spec(body: &Map<String, Value>) -> ApiResult<ScheduleSpec> {
    let mut spec: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !POLICY_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !spec.contains_key("type") {
        let kind = ["cron", "interval_seconds", "rrule"]
            .into_iter()
            .find(|k| spec.contains_key(*k))
            .ok_or_else(|| {
                ApiError::invalid(
                    "Invalid schedule",
                    vec!["a schedule needs one of 'cron', 'interval_seconds' or 'rrule'".into()],
                )
            })?;
        let kind = if kind == "interval_seconds" {
            "interval"
        } else {
            kind
        };
        spec.insert("type".into(), Value::String(kind.into()));
    }
    let spec: ScheduleSpec = serde_json::from_value(Value::Object(spec))
        .map_err(|e| ApiError::invalid("Invalid schedule", vec![e.to_string()]))?;
    spec.compile()
        .map_err(|e| ApiError::invalid("Invalid schedule", vec![e.to_string()]))?;
    Ok(spec)
}

/// A record to check policies against when none is being made (a preview).
fn placeholder_record() -> ScheduleRecord {
    let now = Utc::now();
    ScheduleRecord {
        id: String::new(),
        workspace_id: String::new(),
        deployment_id: String::new(),
        spec: Value::Null,
        parameters: Value::Object(Map::new()),
        active: true,
        catchup: Catchup::Skip.as_str().into(),
        catchup_limit: 10,
        overlap: Overlap::Allow.as_str().into(),
        scheduled_until: None,
        created: now,
        updated: now,
    }
}

fn apply_policies(record: &mut ScheduleRecord, body: &Map<String, Value>) -> ApiResult<()> {
    let mut errors = Vec::new();
    if let Some(p) = body.get("parameters") {
        match p {
            Value::Object(_) => record.parameters = p.clone(),
            _ => errors.push("'parameters' must be an object".to_owned()),
        }
    }
    if let Some(a) = body.get("active") {
        match a.as_bool() {
            Some(b) => record.active = b,
            None => errors.push("'active' must be a boolean".into()),
        }
    }
    if let Some(c) = body.get("catchup") {
        match c.as_str().and_then(Catchup::parse) {
            Some(c) => record.catchup = c.as_str().into(),
            None => errors.push("'catchup' must be skip, latest or all".into()),
        }
    }
    if let Some(n) = body.get("catchup_limit") {
        let n = n.as_number().and_then(super::whole);
        match n.filter(|n| (1..=10_000).contains(n)) {
            Some(n) => record.catchup_limit = n,
            None => errors.push("'catchup_limit' must be between 1 and 10000".into()),
        }
    }
    if let Some(o) = body.get("overlap") {
        match o.as_str().and_then(Overlap::parse) {
            Some(o) => record.overlap = o.as_str().into(),
            None => errors.push("'overlap' must be allow, skip, cancel or queue".into()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("Invalid schedule", errors))
    }
}

fn to_json(state: &AppState, r: &ScheduleRecord) -> Schedule {
    let now = state.scheduler.clock().now();
    let next = serde_json::from_value::<ScheduleSpec>(r.spec.clone())
        .ok()
        .and_then(|s| s.compile().ok())
        .map(|c| c.preview(now, 3))
        .unwrap_or_default();
    Schedule {
        id: r.id.clone(),
        deployment_id: r.deployment_id.clone(),
        schedule: r.spec.clone(),
        parameters: r.parameters.clone(),
        active: r.active,
        catchup: Catchup::parse(&r.catchup).unwrap_or(Catchup::Skip),
        catchup_limit: r.catchup_limit,
        overlap: Overlap::parse(&r.overlap).unwrap_or(Overlap::Allow),
        next: if r.active { next } else { Vec::new() },
        created: r.created,
        updated: r.updated,
    }
}

/// Adds a schedule to a deployment.
#[utoipa::path(post, path = "/api/deployments/{id}/schedules", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path, description = "The deployment's id or name")),
    request_body = NewSchedule,
    responses((status = 201, body = Schedule), (status = 404, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn create(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<(StatusCode, Json<Schedule>)> {
    let named: Vec<String> = body.keys().cloned().collect();
    let body = given(body, &[])?;
    let deployment = find_deployment(&state, &auth.workspace_id, &id).await?;
    let spec = parse_spec(&body)?;
    fields_of_its_kind(&spec, &named)?;
    let now = state.scheduler.clock().now();
    let mut record = ScheduleRecord {
        id: uuid::Uuid::now_v7().to_string(),
        workspace_id: auth.workspace_id,
        deployment_id: deployment.id,
        spec: serde_json::to_value(&spec).map_err(ApiError::internal)?,
        parameters: Value::Object(Map::new()),
        active: true,
        catchup: Catchup::Skip.as_str().into(),
        catchup_limit: 10,
        overlap: Overlap::Allow.as_str().into(),
        scheduled_until: Some(now),
        created: now,
        updated: now,
    };
    apply_policies(&mut record, &body)?;
    state.store().put_schedule(&record).await?;
    state.scheduler.schedules_changed();
    Ok((StatusCode::CREATED, Json(to_json(&state, &record))))
}

/// A deployment's schedules, oldest first.
#[utoipa::path(get, path = "/api/deployments/{id}/schedules", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path, description = "The deployment's id or name"), PageQuery),
    responses((status = 200, body = Page<Schedule>), (status = 404, body = super::Problem)))]
pub async fn list(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Paged { page, .. }: Paged,
) -> ApiResult<Json<Page<Schedule>>> {
    let deployment = find_deployment(&state, &auth.workspace_id, &id).await?;
    let pager = page.check(&state, "schedules", &deployment.id)?;
    let after: Option<String> = pager.after()?;
    let items = state
        .store()
        .deployment_schedules_page(&deployment.id, after.as_deref(), pager.fetch())
        .await?;
    Ok(Json(pager.page(
        items,
        |r| serde_json::json!(r.id),
        |r| to_json(&state, &r),
    )))
}

async fn find(state: &AppState, workspace_id: &str, id: &str) -> ApiResult<ScheduleRecord> {
    state
        .store()
        .schedule(workspace_id, id)
        .await?
        .ok_or(ApiError::NotFound("schedule"))
}

#[utoipa::path(get, path = "/api/schedules/{id}", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 404, body = super::Problem)))]
pub async fn get(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(to_json(
        &state,
        &find(&state, &auth.workspace_id, &id).await?,
    )))
}

/// Changes a schedule: its spec (any of cron, interval_seconds, anchor_date, rrule,
/// timezone) and its policies.
#[utoipa::path(patch, path = "/api/schedules/{id}", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ScheduleChange,
    responses((status = 200, body = Schedule), (status = 404, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn update(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<Schedule>> {
    let body = given(body, &[])?;
    let mut record = find(&state, &auth.workspace_id, &id).await?;
    let spec_fields: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !POLICY_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !spec_fields.is_empty() {
        let mut merged = record.spec.as_object().cloned().unwrap_or_default();
        // A new kind of schedule replaces the old one's fields.
        if ["cron", "interval_seconds", "rrule", "type"]
            .iter()
            .any(|k| spec_fields.contains_key(*k))
        {
            merged.retain(|k, _| k == "timezone");
        }
        merged.extend(spec_fields);
        let spec = parse_spec(&merged)?;
        record.spec = serde_json::to_value(&spec).map_err(ApiError::internal)?;
    }
    let was_active = record.active;
    apply_policies(&mut record, &body)?;
    let now = state.scheduler.clock().now();
    if record.active && !was_active {
        // Resuming starts from now: what a pause skipped is not caught up.
        record.scheduled_until = Some(now);
    }
    record.updated = now;
    state.store().put_schedule(&record).await?;
    if was_active && !record.active {
        cancel_unstarted_runs(&state, &record, PAUSED).await?;
    }
    state.executor.schedule_changed(&record.id);
    state.scheduler.schedules_changed();
    Ok(Json(to_json(&state, &record)))
}

/// Deletes a schedule; its runs not yet started are cancelled.
#[utoipa::path(delete, path = "/api/schedules/{id}", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::Problem)))]
pub async fn delete(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let record = find(&state, &auth.workspace_id, &id).await?;
    // Gone first: a run another node's scheduler creates from it meanwhile is refused
    // when due, since its schedule no longer exists.
    state
        .store()
        .delete_schedule(&auth.workspace_id, &record.id)
        .await?;
    cancel_unstarted_runs(&state, &record, DELETED).await?;
    state.scheduler.schedules_changed();
    Ok(StatusCode::NO_CONTENT)
}

const PAUSED: &str = "the schedule was paused before this run started";
const DELETED: &str = "the schedule was deleted before this run started";

/// Cancels the schedule's runs that have not started, whichever node holds them; this
/// node lets go at once of those it holds waiting, the others drop theirs when due.
async fn cancel_unstarted_runs(
    state: &AppState,
    record: &ScheduleRecord,
    why: &str,
) -> ApiResult<()> {
    let ids = state
        .store()
        .cancel_unstarted_runs(Unstarted::Schedule(&record.id), why)
        .await?;
    for id in ids {
        state.executor.cancel(&id);
    }
    Ok(())
}

async fn set_active(
    state: &AppState,
    workspace_id: &str,
    id: &str,
    active: bool,
) -> ApiResult<Json<Schedule>> {
    let mut record = find(state, workspace_id, id).await?;
    let now = state.scheduler.clock().now();
    let was_active = record.active;
    if active && !was_active {
        // Resuming starts from now: what a pause skipped is not caught up.
        record.scheduled_until = Some(now);
    }
    record.active = active;
    record.updated = now;
    // Inactive first: a run another node's scheduler creates meanwhile is refused when
    // due, since its schedule is no longer active.
    state.store().put_schedule(&record).await?;
    if !active {
        cancel_unstarted_runs(state, &record, PAUSED).await?;
    }
    state.scheduler.schedules_changed();
    Ok(Json(to_json(state, &record)))
}

/// Pauses a schedule without deleting it. Its runs not yet started end Cancelled ("the
/// schedule was paused before this run started"), on whichever node holds them; runs
/// already going keep going. Resuming creates runs again from the time of the resume.
#[utoipa::path(post, path = "/api/schedules/{id}/pause", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 404, body = super::Problem)))]
pub async fn pause(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Schedule>> {
    set_active(&state, &auth.workspace_id, &id, false).await
}

/// Resumes a paused schedule: it creates runs again for fire times from now on (the
/// ones the pause skipped get none).
#[utoipa::path(post, path = "/api/schedules/{id}/resume", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 404, body = super::Problem)))]
pub async fn resume(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Schedule>> {
    set_active(&state, &auth.workspace_id, &id, true).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Backfill {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct Backfilled {
    /// One run per fire time in the range (existing ones included).
    pub flow_run_ids: Vec<String>,
}

const BACKFILL_MAX: usize = 10_000;

/// Creates the runs of a schedule's fire times in a past range; each runs at once.
#[utoipa::path(post, path = "/api/schedules/{id}/backfill", tag = "schedules", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Backfill,
    responses((status = 201, body = Backfilled), (status = 404, body = super::Problem), (status = 422, body = super::Problem)))]
pub async fn backfill(
    auth: Auth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Backfill>,
) -> ApiResult<(StatusCode, Json<Backfilled>)> {
    let record = find(&state, &auth.workspace_id, &id).await?;
    if body.end < body.start {
        return Err(ApiError::invalid(
            "Invalid range",
            vec!["'end' is before 'start'".into()],
        ));
    }
    let runs = state
        .scheduler
        .backfill(&record, body.start, body.end, BACKFILL_MAX)
        .await
        .map_err(ApiError::Internal)?;
    Ok((
        StatusCode::CREATED,
        Json(Backfilled {
            flow_run_ids: runs.into_iter().map(|r| r.id).collect(),
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Preview {
    pub fire_times: Vec<DateTime<Utc>>,
}

/// The next fire times of a schedule spec, before saving it. The body is a spec plus
/// optional `count` (default 10, at most 1000) and `after` (default now).
#[utoipa::path(post, path = "/api/schedules/preview", tag = "schedules", security(("bearer" = [])),
    request_body = SchedulePreview,
    responses((status = 200, body = Preview), (status = 422, body = super::Problem)))]
pub async fn preview(
    _auth: Auth,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<Preview>> {
    let named: Vec<String> = body.keys().cloned().collect();
    let mut body = given(body, &["count", "after"])?;
    let count = match body.remove("count") {
        None => 10,
        Some(v) => v
            .as_number()
            .and_then(super::whole)
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "Invalid preview",
                    vec!["'count' must be between 1 and 1000".into()],
                )
            })? as usize,
    };
    let after = match body.remove("after") {
        None => state.scheduler.clock().now(),
        Some(v) => serde_json::from_value(v)
            .map_err(|e| ApiError::invalid("Invalid preview", vec![format!("'after': {e}")]))?,
    };
    let spec = parse_spec(&body)?;
    fields_of_its_kind(&spec, &named)?;
    // Policies play no part in a preview, but what is given must be what a schedule
    // takes.
    apply_policies(&mut placeholder_record(), &body)?;
    let compiled = spec
        .compile()
        .map_err(|e| ApiError::invalid("Invalid schedule", vec![e.to_string()]))?;
    Ok(Json(Preview {
        fire_times: compiled.preview(after, count),
    }))
}
