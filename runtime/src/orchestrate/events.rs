//! Run events as they happen, for whoever watches (the CLI prints them).

use super::LogLevel;
use crate::model::state::State;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Event {
    FlowRunCreated {
        id: String,
        name: String,
        flow: String,
    },
    FlowRunState {
        id: String,
        name: String,
        state: State,
    },
    TaskRunCreated {
        flow_run_name: String,
        id: String,
        name: String,
    },
    TaskRunState {
        flow_run_name: String,
        name: String,
        state: State,
    },
    Log {
        flow_run_name: String,
        task_run_name: Option<String>,
        level: LogLevel,
        message: String,
    },
}

/// Receives events; called inline, so it must be quick.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;
