//! What a running process prints, for every backend: lines cut from its byte streams, stdout
//! kept as the process output (up to a bound), stderr's tail for a failure; and the text an
//! argument or environment value becomes.

use super::job::Outcome;
use serde_json::Value;
use std::collections::VecDeque;

/// Most stdout a process may write; its lines are the process output.
pub(crate) const STDOUT_BYTES_MAX: usize = 1 << 20;
/// Why a process whose stdout went over `STDOUT_BYTES_MAX` failed.
pub(crate) const STDOUT_EXCEEDED: &str = "stdout exceeded 1 MiB; see the process log";
/// How much of stderr a failure carries: its last lines, at most this many bytes.
const STDERR_TAIL_LINES: usize = 20;
const STDERR_TAIL_BYTES: usize = 4 * 1024;

/// An argument or env value as text: a JSON string as it is, any other value as JSON.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Refuses an environment variable name a process cannot be given.
pub(crate) fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(format!("invalid environment variable name {name:?}"));
    }
    Ok(())
}

/// One output stream of a process: takes its bytes, gives back the lines to log.
pub(crate) trait Stream {
    /// The lines `data` completes.
    fn push(&mut self, data: &[u8]) -> Vec<String>;
    /// The last, unterminated line, if any (the stream has ended).
    fn finish(&mut self) -> Option<String>;
}

/// A byte stream cut into lines (without `\n` or `\r\n`).
struct Lines {
    pending: Vec<u8>,
    /// A line without its newline yet is cut once it holds this many bytes (or more: data
    /// comes in whole pieces).
    max: usize,
}

impl Lines {
    fn new(max: usize) -> Lines {
        Lines {
            pending: Vec::new(),
            max,
        }
    }

    fn push(&mut self, data: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for chunk in data.split_inclusive(|byte| *byte == b'\n') {
            self.pending.extend_from_slice(chunk);
            if chunk.ends_with(b"\n") || self.pending.len() >= self.max {
                lines.push(self.take());
            }
        }
        lines
    }

    fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let bytes = std::mem::take(&mut self.pending);
        let line = String::from_utf8_lossy(&bytes);
        let line = line.strip_suffix('\n').unwrap_or(&line);
        line.strip_suffix('\r').unwrap_or(line).to_string()
    }
}

/// stdout, whose lines are the process output: kept while stdout stays within
/// `STDOUT_BYTES_MAX`, none once it has gone over (the log still gets every line).
pub(crate) struct Stdout {
    lines: Lines,
    kept: Vec<String>,
    bytes: usize,
}

impl Stdout {
    /// stdout cut into lines of at most `line_bytes_max` bytes (see `Lines`).
    pub(crate) fn new(line_bytes_max: usize) -> Stdout {
        Stdout {
            lines: Lines::new(line_bytes_max),
            kept: Vec::new(),
            bytes: 0,
        }
    }

    /// Whether stdout has gone over `STDOUT_BYTES_MAX`.
    pub(crate) fn exceeded(&self) -> bool {
        self.bytes > STDOUT_BYTES_MAX
    }

    /// The lines kept, or `STDOUT_EXCEEDED`.
    pub(crate) fn into_lines(self) -> Result<Vec<String>, String> {
        match self.exceeded() {
            true => Err(STDOUT_EXCEEDED.to_string()),
            false => Ok(self.kept),
        }
    }

    fn keep(&mut self, lines: &[String]) {
        match self.exceeded() {
            true => self.kept = Vec::new(),
            false => self.kept.extend_from_slice(lines),
        }
    }
}

impl Stream for Stdout {
    fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.bytes = self.bytes.saturating_add(data.len());
        let lines = self.lines.push(data);
        self.keep(&lines);
        lines
    }

    fn finish(&mut self) -> Option<String> {
        let line = self.lines.finish()?;
        self.keep(std::slice::from_ref(&line));
        Some(line)
    }
}

/// stderr, of which a failure carries the last lines.
pub(crate) struct Stderr {
    lines: Lines,
    tail: VecDeque<String>,
    tail_bytes: usize,
}

impl Stderr {
    /// stderr cut into lines of at most `line_bytes_max` bytes (see `Lines`).
    pub(crate) fn new(line_bytes_max: usize) -> Stderr {
        Stderr {
            lines: Lines::new(line_bytes_max),
            tail: VecDeque::new(),
            tail_bytes: 0,
        }
    }

    /// A failure for `reason`, followed by stderr's last lines.
    pub(crate) fn failure(self, reason: String) -> Outcome {
        let mut errors = vec![reason];
        errors.extend(self.tail);
        Outcome::Failure(errors)
    }

    fn keep(&mut self, line: &str) {
        let mut line = line.to_string();
        if line.len() > STDERR_TAIL_BYTES {
            let mut cut = STDERR_TAIL_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        self.tail_bytes += line.len();
        self.tail.push_back(line);
        while self.tail.len() > STDERR_TAIL_LINES || self.tail_bytes > STDERR_TAIL_BYTES {
            match self.tail.pop_front() {
                Some(old) => self.tail_bytes -= old.len(),
                None => break,
            }
        }
    }
}

impl Stream for Stderr {
    fn push(&mut self, data: &[u8]) -> Vec<String> {
        let lines = self.lines.push(data);
        for line in &lines {
            self.keep(line);
        }
        lines
    }

    fn finish(&mut self) -> Option<String> {
        let line = self.lines.finish()?;
        self.keep(&line);
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_become_text() {
        assert_eq!(text(&json!("a b")), "a b");
        assert_eq!(text(&json!(2)), "2");
        assert_eq!(text(&json!(null)), "null");
        assert_eq!(text(&json!({"k": [1]})), r#"{"k":[1]}"#);
    }

    #[test]
    fn env_names_are_checked() {
        assert_eq!(check_env_name("GREETING"), Ok(()));
        for name in ["", "C=D", "A\0B"] {
            assert_eq!(
                check_env_name(name),
                Err(format!("invalid environment variable name {name:?}"))
            );
        }
    }

    #[test]
    fn lines_are_cut_at_newlines_across_chunks() {
        let mut lines = Lines::new(8);
        assert_eq!(lines.push(b"ab"), Vec::<String>::new());
        assert_eq!(lines.push(b"c\r\nd\n\ne"), vec!["abc", "d", ""]);
        assert_eq!(lines.push(b"0123456789"), vec!["e0123456789"]);
        assert_eq!(lines.finish(), None);
        assert_eq!(lines.push(b"tail"), Vec::<String>::new());
        assert_eq!(lines.finish(), Some("tail".to_string()));
    }

    #[test]
    fn stdout_keeps_its_lines() {
        let mut stdout = Stdout::new(STDOUT_BYTES_MAX + 1);
        assert_eq!(stdout.push(b"one\ntw"), vec!["one"]);
        assert_eq!(stdout.push(b"o\n"), vec!["two"]);
        assert_eq!(stdout.push(b"three"), Vec::<String>::new());
        assert_eq!(stdout.finish(), Some("three".to_string()));
        assert!(!stdout.exceeded());
        assert_eq!(
            stdout.into_lines(),
            Ok(vec![
                "one".to_string(),
                "two".to_string(),
                "three".to_string()
            ])
        );
    }

    #[test]
    fn stdout_over_one_mib_is_exceeded() {
        let mut stdout = Stdout::new(STDOUT_BYTES_MAX + 1);
        let line = [b'x'; 1023]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>();
        for _ in 0..1024 {
            stdout.push(&line);
            assert!(!stdout.exceeded());
        }
        assert_eq!(stdout.push(b"!"), Vec::<String>::new());
        assert!(stdout.exceeded());
        // Still cut into lines for the log, but no longer kept.
        assert_eq!(stdout.push(b"\n"), vec!["!"]);
        assert!(stdout.kept.is_empty());
        assert_eq!(stdout.into_lines(), Err(STDOUT_EXCEEDED.to_string()));
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let mut stderr = Stderr::new(64 * 1024);
        for n in 0..30 {
            stderr.push(format!("err {n}\n").as_bytes());
        }
        assert_eq!(stderr.push(b"last"), Vec::<String>::new());
        assert_eq!(stderr.finish(), Some("last".to_string()));
        assert_eq!(stderr.tail.len(), STDERR_TAIL_LINES);
        assert_eq!(stderr.tail.front().map(String::as_str), Some("err 11"));
        let Outcome::Failure(errors) = stderr.failure("exit status 3".into()) else {
            panic!("a tail makes a failure");
        };
        assert_eq!(errors[0], "exit status 3");
        assert_eq!(errors.len(), 1 + STDERR_TAIL_LINES);
        assert_eq!(errors.last().map(String::as_str), Some("last"));
    }

    #[test]
    fn stderr_tail_is_bounded_in_bytes() {
        let mut stderr = Stderr::new(64 * 1024);
        stderr.push(&[b'x'; 3000]);
        stderr.push(b"\n");
        stderr.push(&[b'y'; 3000]);
        stderr.push(b"\n");
        assert_eq!(stderr.tail.len(), 1);
        stderr.push(&[b'z'; 10_000]);
        stderr.push(b"\n");
        assert_eq!(stderr.tail.len(), 1);
        assert_eq!(stderr.tail_bytes, STDERR_TAIL_BYTES);
    }
}
