//! Input of client commands: JSON files and inline JSON, each error naming where it came from.

use anyhow::Context as _;
use serde::de::DeserializeOwned;
use std::path::Path;

/// The text of `path`, a `what` file.
pub(crate) fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("read {what} file {}", path.display()))
}

/// `text` (read from `path`) decoded as a `what`.
pub(crate) fn parse_text<T: DeserializeOwned>(
    text: &str,
    path: &Path,
    what: &str,
) -> anyhow::Result<T> {
    serde_json::from_str(text)
        .with_context(|| format!("{} is not a valid {what} JSON file", path.display()))
}

/// The `what` JSON file at `path`, decoded.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    parse_text(&read_text(path, what)?, path, what)
}

/// The value of flag `flag`, given inline, decoded as JSON.
pub(crate) fn parse_flag<T: DeserializeOwned>(text: &str, flag: &str) -> anyhow::Result<T> {
    serde_json::from_str(text).with_context(|| format!("{flag} is not valid JSON: {text:?}"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn errors_name_the_file_and_the_flag() {
        let error = super::parse_text::<proto::WorkflowSpec>("[", Path::new("w.json"), "workflow")
            .unwrap_err()
            .to_string();
        assert_eq!(error, "w.json is not a valid workflow JSON file");
        let error = super::parse_flag::<serde_json::Value>("{", "--status")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("--status is not valid JSON"), "{error}");
        let error = super::read_text(Path::new("/nonexistent/x.json"), "spec")
            .unwrap_err()
            .to_string();
        assert_eq!(error, "read spec file /nonexistent/x.json");
    }
}
