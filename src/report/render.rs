//! How reports are written out: aligned text tables for terminals and CSV for
//! spreadsheets. Money keeps every digit it has (no rounding for display).

use std::fmt::Write as _;

use rust_decimal::Decimal;

/// A table of text cells: the first `keys` columns are names (left-aligned), the rest
/// numbers (right-aligned); an optional total line sits below a rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub total: Option<Vec<String>>,
    pub keys: usize,
}

impl Table {
    pub fn new(header: &[&str], keys: usize) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            keys,
            ..Table::default()
        }
    }

    /// Aligned columns, widths counted in characters (names need not be ASCII).
    pub fn text(&self) -> String {
        let mut lines: Vec<&[String]> = vec![&self.header];
        lines.extend(self.rows.iter().map(Vec::as_slice));
        lines.extend(self.total.as_deref());
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                lines
                    .iter()
                    .map(|l| l.get(c).map_or(0, |v| v.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (index, line) in lines.iter().enumerate() {
            if self.total.is_some() && index == lines.len() - 1 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                let _ = writeln!(out, "{}", rule.join("  "));
            }
            let cells: Vec<String> = line
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, width))| {
                    // `{:<width$}` pads by characters, as the widths are counted.
                    if i < self.keys {
                        format!("{cell:<width$}")
                    } else {
                        format!("{cell:>width$}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        out
    }

    /// The header and the rows as CSV (the total is left out: spreadsheets sum).
    pub fn csv(&self) -> String {
        csv_text(&self.header, &self.rows)
    }

    /// The total line; its first cell reads `total` when the table has key columns.
    pub fn set_total(&mut self, mut cells: Vec<String>) {
        if let Some(first) = cells.first_mut().filter(|_| self.keys > 0) {
            *first = "total".into();
        }
        self.total = Some(cells);
    }
}

/// Amounts written with as many decimals as the most precise one needs, so a column of
/// them lines up on the decimal point without rounding any.
pub fn money_column(amounts: impl IntoIterator<Item = Decimal>) -> Vec<String> {
    let amounts: Vec<Decimal> = amounts.into_iter().map(|a| a.normalize()).collect();
    let scale = amounts.iter().map(Decimal::scale).max().unwrap_or(0).max(2) as usize;
    amounts.iter().map(|a| format!("{a:.scale$}")).collect()
}

/// CSV text: a header line, then the rows, every field quoted as needed.
pub fn csv_text(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for line in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let fields: Vec<String> = line.iter().map(|f| csv_field(f)).collect();
        let _ = writeln!(out, "{}", fields.join(","));
    }
    out
}

/// Quotes a CSV field when needed, and defuses spreadsheet formulas.
pub fn csv_field(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_csv_field(&mut out, value);
    out
}

/// Appends `csv_field(value)` to `out`, copying the value once where it needs no quotes.
pub fn push_csv_field(out: &mut String, value: &str) {
    let defused = value.starts_with(['=', '+', '-', '@']) && value.parse::<f64>().is_err();
    let quoted = value.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if defused {
        out.push('\'');
    }
    if quoted {
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("-0.5"), "-0.5");
    }

    #[test]
    fn columns_align_by_characters_not_bytes() {
        let mut table = Table::new(&["model", "usd"], 1);
        table.rows = vec![
            vec!["mistral-médium".into(), "1.5".into()],
            vec!["gpt".into(), "10.25".into()],
        ];
        table.set_total(vec![String::new(), "11.75".into()]);
        let text = table.text();
        let lines: Vec<&str> = text.lines().collect();
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{text}");
        assert_eq!(lines[3], "--------------  -----");
        assert!(lines[4].starts_with("total"), "{text}");
        assert_eq!(
            money_column([Decimal::new(15, 1), Decimal::new(1025, 2)]),
            ["1.50", "10.25"]
        );
    }
}
