//! Loading and checking scenario files. (Being written.)

use std::path::Path;

use super::Scenario;

/// A scenario file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The message, naming file, line and field.
    pub message: String,
}

/// Reads and checks a scenario file.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError { message: format!("{}: {e}", path.display()) })?;
    load_str(path, &text)
}

/// Checks scenario text; `path` names it in messages and anchors relative paths.
pub fn load_str(path: &Path, _text: &str) -> Result<Scenario, LoadError> {
    Err(LoadError { message: format!("{}: not yet", path.display()) })
}
