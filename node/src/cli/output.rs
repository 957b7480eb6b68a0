//! Output for people (aligned tables) or scripts (`--json`).

use serde::Serialize;

/// How a command prints its result.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    /// Prints `value` as JSON, or the table built from it.
    pub(crate) fn show<T: Serialize>(&self, value: &T, headers: &[&str], rows: Vec<Vec<String>>) {
        if self.json {
            let text = serde_json::to_string_pretty(value).expect("values always serialize");
            print(&format!("{text}\n"));
        } else {
            print(&table(headers, &rows));
        }
    }

    /// Prints `value` as JSON, or one table per section, separated by blank lines.
    pub(crate) fn show_sections<T: Serialize>(&self, value: &T, sections: &[Section<'_>]) {
        if self.json {
            self.show(value, &[], Vec::new());
            return;
        }
        let texts: Vec<String> = sections.iter().map(|(h, rows)| table(h, rows)).collect();
        print(&texts.join("\n"));
    }

    /// Reports a change the node acknowledged without returning an object:
    /// `{"<key>": id, "done": what}`.
    pub(crate) fn done(&self, key: &str, id: &str, what: &str) {
        let value = serde_json::json!({ key: id, "done": what });
        let rows = vec![vec![id.to_string(), what.to_string()]];
        self.show(&value, &[&key.to_uppercase(), "DONE"], rows);
    }
}

/// Writes `text` to stdout. A reader that went away (`colonymesh nodes | head`) ends the
/// command quietly, as Unix tools do, instead of a panic.
pub(crate) fn print(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => {
            eprintln!("error: cannot write to stdout: {error}");
            std::process::exit(1);
        }
    }
}

/// Headers and rows of one table.
pub(crate) type Section<'a> = (&'a [&'a str], Vec<Vec<String>>);

/// A time for a table: RFC 3339, or `-` when not set.
pub(crate) fn time(t: proto::GoTime) -> String {
    if t.is_zero() {
        "-".to_string()
    } else {
        t.to_rfc3339()
    }
}

/// A Unix-nanoseconds timestamp for a table.
pub(crate) fn nanos(t: i64) -> String {
    time(proto::GoTime::from_unix_nanos(t))
}

/// Columns padded to their widest cell, separated by two spaces.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(headers.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

/// Process state as a word.
pub(crate) fn state_name(state: i32) -> &'static str {
    match state {
        0 => "waiting",
        1 => "running",
        2 => "successful",
        3 => "failed",
        4 => "cancelled",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["a".to_string(), "long value".to_string()],
            vec!["bbb".into(), "x".into()],
        ];
        let text = super::table(&["ID", "V"], &rows);
        assert_eq!(text, "ID   V\na    long value\nbbb  x\n");
    }
}
