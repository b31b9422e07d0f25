//! Artifacts attached to the current run (Prefect's `prefect.artifacts`).
//!
//! A `key` groups the versions of one artifact across runs (lowercase letters, digits and
//! dashes); without one, the artifact belongs to the run only.

use std::fmt;

use serde::Serialize;

use crate::bindings::weir::flow::artifacts as host;
use crate::error::{Error, Result};

/// The id of an artifact, as the host assigned it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArtifactId(String);

impl ArtifactId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn create(
    data: host::ArtifactData,
    key: Option<&str>,
    description: Option<&str>,
) -> Result<ArtifactId> {
    let artifact = host::Artifact {
        key: key.map(str::to_owned),
        description: description.map(str::to_owned),
        data,
    };
    host::create(&artifact)
        .map(ArtifactId)
        .map_err(artifact_error)
}

fn artifact_error(message: String) -> Error {
    Error::msg(message).kind("artifact")
}

/// Creates a Markdown artifact (a report).
pub fn create_markdown_artifact(
    markdown: &str,
    key: Option<&str>,
    description: Option<&str>,
) -> Result<ArtifactId> {
    create(
        host::ArtifactData::Markdown(markdown.to_owned()),
        key,
        description,
    )
}

/// Creates a table artifact from rows: a list of objects (serialized structs or maps, one
/// column per field) or a list of lists.
pub fn create_table_artifact(
    rows: &impl Serialize,
    key: Option<&str>,
    description: Option<&str>,
) -> Result<ArtifactId> {
    let rows = serde_json::to_value(rows)
        .map_err(|error| artifact_error(format!("cannot serialize the table: {error}")))?;
    if !rows.is_array() {
        return Err(artifact_error(
            "a table artifact needs a list of rows".to_owned(),
        ));
    }
    create(
        host::ArtifactData::Table(rows.to_string()),
        key,
        description,
    )
}

/// Creates a link artifact.
pub fn create_link_artifact(
    url: &str,
    link_text: Option<&str>,
    key: Option<&str>,
    description: Option<&str>,
) -> Result<ArtifactId> {
    let link = host::Link {
        url: url.to_owned(),
        text: link_text.map(str::to_owned),
    };
    create(host::ArtifactData::Link(link), key, description)
}

/// Creates a progress artifact (a percentage, 0 to 100) to update as the run advances.
pub fn create_progress_artifact(
    progress: f64,
    key: Option<&str>,
    description: Option<&str>,
) -> Result<ProgressArtifact> {
    create(host::ArtifactData::Progress(progress), key, description)
        .map(|id| ProgressArtifact { id })
}

/// Updates a progress artifact created by this run.
pub fn update_progress_artifact(id: &ArtifactId, progress: f64) -> Result<()> {
    host::update_progress(&id.0, progress).map_err(artifact_error)
}

/// A progress artifact, from [`create_progress_artifact`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressArtifact {
    id: ArtifactId,
}

impl ProgressArtifact {
    /// The artifact id.
    pub fn id(&self) -> &ArtifactId {
        &self.id
    }

    /// Sets the progress (0 to 100).
    pub fn update(&self, progress: f64) -> Result<()> {
        update_progress_artifact(&self.id, progress)
    }
}
