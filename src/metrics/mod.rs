//! Metrics for Prometheus, in the form node_exporter's textfile collector reads:
//! `status --format openmetrics` prints them, and a provisioning run with
//! `--metrics-file` writes them (plus how the run ended) to a `.prom` file.
//!
//! The text is the subset that is valid both as OpenMetrics 1.0 and as Prometheus'
//! text format 0.0.4, because the textfile collector parses files with the 0.0.4
//! parser (`expfmt.TextParser`): every family is a `gauge` with `# HELP` and
//! `# TYPE` (the 0.0.4 parser refuses OpenMetrics' `info` and `stateset` types, so the
//! satellite ID is a gauge named `…_info` with value 1, as node_exporter's own
//! `node_uname_info`), units are in the names (`_bytes`, `_seconds`), no `# UNIT`
//! lines, no timestamps (the collector skips a whole file that has one), and the
//! text ends with `# EOF`, which OpenMetrics requires and the 0.0.4 parser reads as a
//! comment.
//!
//! Written by hand rather than with the `prometheus-client` crate: that crate
//! encodes OpenMetrics proper (`info` types, `# UNIT`), which the collector refuses,
//! and it is built for a live registry, not one text printed at exit.
pub mod exposition;
pub mod families;
pub mod partition;
pub mod run;
pub mod textfile;

pub use exposition::{Samples, Value};
pub use families::{Family, ALL_FAMILIES};
