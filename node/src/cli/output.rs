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
            println!("{text}");
        } else {
            print!("{}", table(headers, &rows));
        }
    }
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
