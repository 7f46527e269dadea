//! How the admin CLI prints: Kafka's error names (`TOPIC_ALREADY_EXISTS`, as Kafka's tools
//! print them) and aligned tables.

use kafka_protocol::protocol::StrBytes;

pub use crate::errors::error_name;

/// `-` for a missing value, as kafka-consumer-groups.sh prints it.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// An error code with the broker's message, if it sent one.
pub fn error_text(code: i16, message: Option<&StrBytes>) -> String {
    let name = error_name(code);
    match message {
        Some(m) if !m.is_empty() => format!("{name}: {}", m.as_str()),
        _ => name,
    }
}

/// Fails with `what: ERROR_NAME: message` unless `code` is 0.
pub fn check(code: i16, message: Option<&StrBytes>, what: &str) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    anyhow::bail!("{what}: {}", error_text(code, message))
}

/// A plain-text table: columns padded to their widest cell, two spaces apart, no trailing blanks.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths.get(i).copied().unwrap_or(0);
            for _ in cell.chars().count()..pad {
                line.push(' ');
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
