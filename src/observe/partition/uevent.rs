//! The kernel's `uevent` files: one `KEY=VALUE` per line.
//!
//! The kernel writes values verbatim (a GPT name with spaces stays one value),
//! so only the first `=` splits a line.

use std::collections::BTreeMap;

/// Parses the text of a sysfs `uevent` file into its keys and values.
/// Lines without `=` carry nothing we can use and are skipped.
pub(crate) fn parse_uevent(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_first_equals_and_keeps_spaces() {
        let map = parse_uevent("MAJOR=254\nMINOR=1\nDEVNAME=vda1\nPARTNAME=my data = x \n\n");
        assert_eq!(map.get("MAJOR").map(String::as_str), Some("254"));
        assert_eq!(
            map.get("PARTNAME").map(String::as_str),
            Some("my data = x ")
        );
        assert_eq!(map.len(), 4);
    }
}
