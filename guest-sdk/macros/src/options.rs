//! The options of `#[flow(...)]` and `#[task(...)]` (Prefect's decorator arguments).

use proc_macro2::Span;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprPath, Ident, Lit, LitStr, Meta, Token};

use crate::Kind;

const COMMON: &[&str] = &[
    "name",
    "description",
    "version",
    "tags",
    "retries",
    "retry_delay_seconds",
    "retry_jitter_factor",
    "timeout_seconds",
    "persist_result",
    "log_prints",
    "on_completion",
    "on_failure",
    "on_running",
];
const TASK_ONLY: &[&str] = &[
    "task_run_name",
    "retry_condition",
    "cache_policy",
    "cache_key_fn",
    "cache_expiration",
    "refresh_cache",
    "on_commit",
    "on_rollback",
];
const FLOW_ONLY: &[&str] = &[
    "flow_run_name",
    "on_cancellation",
    "on_crashed",
    "validate_parameters",
    "task_runner",
];

/// Prefect's limit on retry delays.
const MAX_RETRY_DELAYS: usize = 50;

/// A run name: a template over the parameters, or a function called as the run starts.
pub enum RunName {
    Template(LitStr),
    Fn(ExprPath),
}

/// How a task's results are cached.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CachePolicy {
    None,
    Inputs,
}

/// The checked options.
#[derive(Default)]
pub struct Options {
    pub name: Option<LitStr>,
    pub description: Option<LitStr>,
    pub version: Option<LitStr>,
    pub tags: Vec<LitStr>,
    pub retries: Option<u32>,
    pub retry_delay_seconds: Vec<f64>,
    pub retry_jitter_factor: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub persist_result: Option<bool>,
    pub log_prints: Option<bool>,
    pub on_completion: Vec<ExprPath>,
    pub on_failure: Vec<ExprPath>,
    pub on_cancellation: Vec<ExprPath>,
    pub on_crashed: Vec<ExprPath>,
    pub on_running: Vec<ExprPath>,
    /// Transaction hooks (tasks only).
    pub on_commit: Vec<ExprPath>,
    pub on_rollback: Vec<ExprPath>,
    pub run_name: Option<RunName>,
    pub validate_parameters: Option<bool>,
    /// The flow's task runner: how many submitted task runs run at once.
    pub max_workers: Option<u32>,
    pub retry_condition: Option<ExprPath>,
    pub cache_policy: Option<(CachePolicy, Span)>,
    pub cache_key_fn: Option<ExprPath>,
    pub cache_expiration: Option<f64>,
    pub refresh_cache: bool,
}

/// Collects errors so that one expansion reports all of them.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

fn error(span: impl Spanned, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span.span(), message)
}

pub fn parse(kind: Kind, attr: proc_macro2::TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr) {
        Ok(metas) => metas,
        Err(e) => {
            errors.push(e);
            return options;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let key = match meta.path().get_ident() {
            Some(key) => key.clone(),
            None => {
                errors.push(error(
                    meta.path(),
                    "expected an option name, like `retries = 3`",
                ));
                continue;
            }
        };
        let name = key.to_string();
        if let Err(e) = check_key(kind, &key) {
            errors.push(e);
            continue;
        }
        let value = match meta {
            Meta::NameValue(nv) => nv.value,
            _ => {
                errors.push(error(
                    &key,
                    format!("`{name}` needs a value: `{name} = ...`"),
                ));
                continue;
            }
        };
        if seen.contains(&name) {
            errors.push(error(&key, format!("duplicate option `{name}`")));
            continue;
        }
        seen.push(name.clone());
        if let Err(e) = set(&mut options, &name, &value) {
            errors.push(e);
        }
    }
    if let (Kind::Flow, Some(name)) = (kind, &options.name)
        && let Some(c) = name.value().chars().find(|c| "/%&><".contains(*c))
    {
        errors.push(error(
            name,
            format!("a flow name cannot contain '{c}' (none of / % & > <)"),
        ));
    }
    if let (Some(key_fn), Some((CachePolicy::None, _))) =
        (&options.cache_key_fn, &options.cache_policy)
    {
        errors.push(error(
            key_fn,
            "`cache_key_fn` gives the task a custom cache policy; it cannot be combined with `cache_policy = \"none\"`",
        ));
    }
    options
}

fn check_key(kind: Kind, key: &Ident) -> syn::Result<()> {
    let name = key.to_string();
    let (own, other, other_kind) = match kind {
        Kind::Task => (TASK_ONLY, FLOW_ONLY, Kind::Flow),
        Kind::Flow => (FLOW_ONLY, TASK_ONLY, Kind::Task),
    };
    if COMMON.contains(&name.as_str()) || own.contains(&name.as_str()) {
        return Ok(());
    }
    if other.contains(&name.as_str()) {
        let hint = match name.as_str() {
            "flow_run_name" => "; a task's run name is `task_run_name`".to_owned(),
            "task_run_name" => "; a flow's run name is `flow_run_name`".to_owned(),
            _ => String::new(),
        };
        return Err(error(
            key,
            format!(
                "`{name}` is an option of {}, not of {}{hint}",
                other_kind.attr(),
                kind.attr()
            ),
        ));
    }
    let mut known: Vec<&str> = COMMON.iter().chain(own).copied().collect();
    known.sort_unstable();
    Err(error(
        key,
        format!(
            "unknown option `{name}` of {}; expected one of: {}",
            kind.attr(),
            known.join(", ")
        ),
    ))
}

fn set(options: &mut Options, name: &str, value: &Expr) -> syn::Result<()> {
    match name {
        "name" => options.name = Some(non_empty(lit_str(name, value)?)?),
        "description" => options.description = Some(lit_str(name, value)?),
        "version" => options.version = Some(lit_str(name, value)?),
        "tags" => options.tags = str_list(name, value)?,
        "retries" => options.retries = Some(lit_u32(name, value)?),
        "retry_delay_seconds" => options.retry_delay_seconds = number_or_list(name, value)?,
        "retry_jitter_factor" => {
            options.retry_jitter_factor = Some(bounded(name, value, MAX_JITTER, "")?)
        }
        "timeout_seconds" => options.timeout_seconds = Some(seconds(name, value)?),
        "persist_result" => options.persist_result = Some(lit_bool(name, value)?),
        "log_prints" => options.log_prints = Some(lit_bool(name, value)?),
        "on_running" => options.on_running = path_list(name, value)?,
        "on_commit" => options.on_commit = path_list(name, value)?,
        "on_rollback" => options.on_rollback = path_list(name, value)?,
        "validate_parameters" => options.validate_parameters = Some(lit_bool(name, value)?),
        "task_runner" => options.max_workers = task_runner(value)?,
        "on_completion" => options.on_completion = path_list(name, value)?,
        "on_failure" => options.on_failure = path_list(name, value)?,
        "on_cancellation" => options.on_cancellation = path_list(name, value)?,
        "on_crashed" => options.on_crashed = path_list(name, value)?,
        "task_run_name" | "flow_run_name" => {
            options.run_name = Some(match value {
                Expr::Path(p) if p.qself.is_none() => RunName::Fn(p.clone()),
                _ => match lit_str(name, value) {
                    Ok(template) => RunName::Template(non_empty(template)?),
                    Err(_) => {
                        return Err(error(
                            value,
                            format!(
                                "`{name}` expects a template string, like `{name} = \"run-{{x}}\"`, \
                                 or the path of a function returning the name, like `{name} = my_name`"
                            ),
                        ));
                    }
                },
            })
        }
        "retry_condition" => options.retry_condition = Some(path(name, value)?),
        "cache_policy" => {
            let policy = lit_str(name, value)?;
            let parsed = match policy.value().as_str() {
                "inputs" => CachePolicy::Inputs,
                "none" => CachePolicy::None,
                other => {
                    return Err(error(
                        &policy,
                        format!(
                            "unknown cache policy \"{other}\"; expected \"inputs\" or \"none\" (a custom key comes from `cache_key_fn`)"
                        ),
                    ));
                }
            };
            options.cache_policy = Some((parsed, policy.span()));
        }
        "cache_key_fn" => options.cache_key_fn = Some(path(name, value)?),
        "cache_expiration" => options.cache_expiration = Some(seconds(name, value)?),
        "refresh_cache" => options.refresh_cache = lit_bool(name, value)?,
        _ => unreachable!("option names are checked first"),
    }
    Ok(())
}

fn lit(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => lit(&group.expr),
        _ => None,
    }
}

fn lit_str(name: &str, value: &Expr) -> syn::Result<LitStr> {
    match lit(value) {
        Some(Lit::Str(s)) => Ok(s.clone()),
        _ => Err(error(
            value,
            format!("`{name}` expects a string literal, like `{name} = \"...\"`"),
        )),
    }
}

fn non_empty(s: LitStr) -> syn::Result<LitStr> {
    if s.value().trim().is_empty() {
        return Err(error(&s, "expected a non-empty string"));
    }
    Ok(s)
}

fn lit_bool(name: &str, value: &Expr) -> syn::Result<bool> {
    match lit(value) {
        Some(Lit::Bool(b)) => Ok(b.value),
        _ => Err(error(value, format!("`{name}` expects `true` or `false`"))),
    }
}

fn lit_u32(name: &str, value: &Expr) -> syn::Result<u32> {
    match lit(value) {
        Some(Lit::Int(i)) => i.base10_parse::<u32>().map_err(|_| {
            error(
                i,
                format!("`{name}` expects a non-negative integer that fits in u32"),
            )
        }),
        _ => Err(error(
            value,
            format!("`{name}` expects an integer, like `{name} = 3`"),
        )),
    }
}

fn number(name: &str, value: &Expr) -> syn::Result<f64> {
    let parsed = match lit(value) {
        Some(Lit::Int(i)) => i.base10_parse::<f64>().ok(),
        Some(Lit::Float(f)) => f.base10_parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(error(
            value,
            format!(
                "`{name}` expects a non-negative number (integer or float), like `{name} = 2.5`"
            ),
        )),
    }
}

/// The longest duration the host accepts (ten years), checked here so that a component
/// that would be refused at upload does not compile.
const MAX_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;
const MAX_JITTER: f64 = 1000.0;

fn bounded(name: &str, value: &Expr, max: f64, unit: &str) -> syn::Result<f64> {
    let n = number(name, value)?;
    if n > max {
        return Err(error(
            value,
            format!("`{name}` must be at most {max}{unit}, not {n}"),
        ));
    }
    Ok(n)
}

/// A number of seconds within the host's bound. `timeout_seconds = 0` means no
/// timeout, as in Prefect.
fn seconds(name: &str, value: &Expr) -> syn::Result<f64> {
    bounded(name, value, MAX_SECONDS, " seconds (ten years)")
}

/// Prefect's task runners: `SequentialTaskRunner` (one at a time, in submission order),
/// `ThreadPoolTaskRunner(N)` (N at once), `ThreadPoolTaskRunner` / `ConcurrentTaskRunner`
/// (no bound of the flow's own).
fn task_runner(value: &Expr) -> syn::Result<Option<u32>> {
    let expected = "`task_runner` expects `SequentialTaskRunner`, `ThreadPoolTaskRunner(max_workers)` \
                    or `ConcurrentTaskRunner`";
    let (path, args) = match value {
        Expr::Path(p) => (&p.path, None),
        Expr::Call(call) => match &*call.func {
            Expr::Path(p) => (&p.path, Some(&call.args)),
            _ => return Err(error(value, expected)),
        },
        _ => return Err(error(value, expected)),
    };
    let runner = path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    match (runner.as_str(), args) {
        ("SequentialTaskRunner", None) => Ok(Some(1)),
        ("ThreadPoolTaskRunner" | "ConcurrentTaskRunner", None) => Ok(None),
        ("ThreadPoolTaskRunner", Some(args)) if args.len() == 1 => {
            let n = lit_u32("max_workers", &args[0])?;
            if n == 0 {
                return Err(error(&args[0], "`max_workers` must be at least 1"));
            }
            Ok(Some(n))
        }
        _ => Err(error(value, expected)),
    }
}

fn number_or_list(name: &str, value: &Expr) -> syn::Result<Vec<f64>> {
    match value {
        Expr::Array(array) if array.elems.len() > MAX_RETRY_DELAYS => Err(error(
            value,
            format!(
                "`{name}` lists {} delays; at most {MAX_RETRY_DELAYS} are allowed (Prefect's limit)",
                array.elems.len()
            ),
        )),
        Expr::Array(array) => array.elems.iter().map(|e| seconds(name, e)).collect(),
        _ => match number(name, value) {
            Ok(_) => Ok(vec![seconds(name, value)?]),
            Err(_) => Err(error(
                value,
                format!(
                    "`{name}` expects a number or a list of numbers, like `{name} = [1, 2.5, 10]`"
                ),
            )),
        },
    }
}

fn str_list(name: &str, value: &Expr) -> syn::Result<Vec<LitStr>> {
    match value {
        Expr::Array(array) => array
            .elems
            .iter()
            .map(|e| match lit(e) {
                Some(Lit::Str(s)) => Ok(s.clone()),
                _ => Err(error(e, format!("`{name}` expects string literals"))),
            })
            .collect(),
        _ => Err(error(
            value,
            format!("`{name}` expects a list of strings, like `{name} = [\"a\", \"b\"]`"),
        )),
    }
}

fn path(name: &str, value: &Expr) -> syn::Result<ExprPath> {
    match value {
        Expr::Path(p) if p.qself.is_none() => Ok(p.clone()),
        _ => Err(error(
            value,
            format!("`{name}` expects the path of a function, like `{name} = my_fn`"),
        )),
    }
}

fn path_list(name: &str, value: &Expr) -> syn::Result<Vec<ExprPath>> {
    match value {
        Expr::Array(array) => array.elems.iter().map(|e| path(name, e)).collect(),
        _ => path(name, value).map(|p| vec![p]).map_err(|_| {
            error(
                value,
                format!("`{name}` expects a list of function paths, like `{name} = [notify]`"),
            )
        }),
    }
}
