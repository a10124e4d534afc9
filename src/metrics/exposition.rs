//! The exposition text: `# HELP` and `# TYPE` once per family, its samples together
//! below them, `# EOF` at the end (see the module docs of [`super`] for which subset
//! of the formats this is, and why).
use super::Family;
use std::fmt::Write;

/// A sample's value: integers are printed exactly (byte counts beyond 2^53 stay
/// exact in the text; Prometheus reads them as floats either way).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Integer(u128),
    Float(f64),
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Integer(u128::from(value))
    }
}

#[derive(Debug)]
struct Sample {
    family: &'static Family,
    labels: Vec<(&'static str, String)>,
    value: Value,
}

/// Samples gathered in any order; printed grouped by family, families in the order
/// they were first added.
#[derive(Debug, Default)]
pub struct Samples {
    samples: Vec<Sample>,
}

impl Samples {
    pub fn add(&mut self, family: &'static Family, labels: &[(&'static str, &str)], value: Value) {
        self.samples.push(Sample {
            family,
            labels: labels
                .iter()
                .map(|(name, value)| (*name, (*value).to_owned()))
                .collect(),
            value,
        });
    }

    /// The value of the first sample of `family` (for tests and callers that check).
    pub fn value_of(&self, family: &Family) -> Option<Value> {
        self.samples
            .iter()
            .find(|s| s.family.name == family.name)
            .map(|s| s.value)
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The exposition text, ending with `# EOF` and a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut families: Vec<&'static Family> = Vec::new();
        for sample in &self.samples {
            if !families.iter().any(|f| f.name == sample.family.name) {
                families.push(sample.family);
            }
        }
        for family in families {
            let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
            let _ = writeln!(out, "# TYPE {} gauge", family.name);
            for sample in self.samples.iter().filter(|s| s.family.name == family.name) {
                out.push_str(family.name);
                if !sample.labels.is_empty() {
                    let labels: Vec<String> = sample
                        .labels
                        .iter()
                        .map(|(name, value)| format!("{name}=\"{}\"", escape_label_value(value)))
                        .collect();
                    let _ = write!(out, "{{{}}}", labels.join(","));
                }
                let _ = match sample.value {
                    Value::Integer(n) => writeln!(out, " {n}"),
                    Value::Float(x) => writeln!(out, " {}", float_text(x)),
                };
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

/// A label value as both formats want it: backslash, double quote and line feed
/// escaped; everything else (any UTF-8) as it is.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out
}

/// Rust prints finite floats without an exponent, which both formats accept;
/// non-finite values in their spelling.
fn float_text(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::families::{POOL_DATA_SIZE_BYTES, RUN_DURATION_SECONDS, SATELLITE_ID_INFO};

    #[test]
    fn families_are_grouped_with_help_and_type_once_and_the_text_ends_with_eof() {
        let mut samples = Samples::default();
        samples.add(
            &POOL_DATA_SIZE_BYTES,
            &[("pool", "a")],
            Value::Integer(1 << 60),
        );
        samples.add(&RUN_DURATION_SECONDS, &[], Value::Float(0.25));
        samples.add(&POOL_DATA_SIZE_BYTES, &[("pool", "b")], Value::Integer(7));
        let text = samples.render();
        let name = POOL_DATA_SIZE_BYTES.name;
        assert_eq!(
            text,
            format!(
                "# HELP {name} {}\n# TYPE {name} gauge\n{name}{{pool=\"a\"}} 1152921504606846976\n{name}{{pool=\"b\"}} 7\n\
                 # HELP {d} {}\n# TYPE {d} gauge\n{d} 0.25\n# EOF\n",
                POOL_DATA_SIZE_BYTES.help,
                RUN_DURATION_SECONDS.help,
                d = RUN_DURATION_SECONDS.name
            )
        );
        assert_eq!(Samples::default().render(), "# EOF\n");
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline_only() {
        let id = "a\\b\"c\nd é 🙂 & {x}=,";
        assert_eq!(escape_label_value(id), "a\\\\b\\\"c\\nd é 🙂 & {x}=,");
        let mut samples = Samples::default();
        samples.add(
            &SATELLITE_ID_INFO,
            &[("satellite_id", id)],
            Value::from(true),
        );
        assert!(samples
            .render()
            .contains("{satellite_id=\"a\\\\b\\\"c\\nd é 🙂 & {x}=,\"} 1\n"));
    }

    #[test]
    fn floats_print_without_exponent() {
        assert_eq!(float_text(1e-7), "0.0000001");
        assert_eq!(float_text(12.5), "12.5");
        assert_eq!(float_text(f64::INFINITY), "+Inf");
    }
}
