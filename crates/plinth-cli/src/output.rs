//! How commands print: human text by default, JSON with `--output json` (for scripts and CI), through
//! a locked stdout that treats a reader going away (`plinth ... | head`) as the end of the command
//! rather than a panic; and the aligned tables every command's text output shares.

use std::io::Write as _;

use clap::ValueEnum;

/// Output format of client commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

impl Output {
    /// Prints `json` in JSON mode, or `text` otherwise, as one line (see [`print_line`]).
    pub fn print(self, json: &serde_json::Value, text: impl FnOnce() -> String) {
        match self {
            Self::Json => print_line(&json.to_string()),
            Self::Text => print_line(&text()),
        }
    }
}

/// Writes `line` and a newline to stdout and flushes, so that what a command prints shows at once even
/// through a pipe. When the reader has gone away (`| head` took what it wanted) the process exits
/// quietly with code 0, as `head`'s users expect of command-line tools; any other write error (a full
/// disk behind a redirect) ends it with the error and code 2, the code of every other error.
pub fn print_line(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    if let Err(err) = written {
        exit_on_write_error(&err);
    }
}

/// Writes raw bytes to stdout (a task's log) and flushes, ending the process as [`print_line`] does
/// when stdout is gone.
pub fn print_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(bytes).and_then(|()| stdout.flush());
    if let Err(err) = written {
        exit_on_write_error(&err);
    }
}

/// Whether a write failed because the reading end of stdout was closed.
pub fn is_broken_pipe(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::BrokenPipe
}

fn exit_on_write_error(err: &std::io::Error) -> ! {
    if is_broken_pipe(err) {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {err}");
    std::process::exit(2);
}

/// A table cell's text, or `-` when it is empty, so that columns never look shifted.
pub fn dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// An aligned table: a header row and the rows, columns separated by two spaces, the last column not
/// padded. Cells are counted in characters, so names in any script line up.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate().take(columns) {
            widths[index] = widths[index].max(cell.chars().count());
        }
    }
    let render = |cells: &mut dyn Iterator<Item = &str>| {
        let mut line = String::new();
        for (index, cell) in cells.enumerate().take(columns) {
            line.push_str(cell);
            if index + 1 < columns {
                let pad = widths[index].saturating_sub(cell.chars().count());
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        line.trim_end().to_owned()
    };
    let mut lines = vec![render(&mut headers.iter().copied())];
    for row in rows {
        lines.push(render(&mut row.iter().map(String::as_str)));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_columns_and_do_not_pad_the_last() {
        let rows = vec![
            vec!["entity".to_owned(), "driver".to_owned(), "-".to_owned()],
            vec![
                "feature_view".to_owned(),
                "été".to_owned(),
                "hourly stats".to_owned(),
            ],
        ];
        assert_eq!(
            super::table(&["KIND", "NAME", "DESCRIPTION"], &rows),
            "KIND          NAME    DESCRIPTION\n\
             entity        driver  -\n\
             feature_view  été     hourly stats"
        );
    }

    #[test]
    fn empty_trailing_cells_leave_no_trailing_spaces() {
        let rows = vec![vec!["a".to_owned(), String::new()]];
        assert_eq!(super::table(&["X", ""], &rows), "X\na");
    }
}
