//! LVM's naming rules, checked before any command line is built: liblvm2cmd splits
//! its command line on whitespace, so a name must never be able to smuggle in an
//! extra argument, and LVM's own refusal would come only after work has started.
//!
//! [`VgName`], [`LvName`] and [`PartitionLabel`] can be made only by these
//! validators, so a value of those types is a name that passed them.
use serde::Serialize;
use std::fmt;
use std::ops::Deref;
use thiserror::Error;

/// LVM's limit for VG and LV names (NAME_LEN 128 including the NUL).
pub const MAX_NAME_LEN: usize = 127;

/// Suffixes LVM reserves for its hidden sub-LVs; an LV name must not contain them.
const RESERVED_LV_PARTS: &[&str] = &[
    "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_mimage", "_mlog", "_pmspare",
    "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin",
];
/// Prefixes LVM reserves for its own LVs.
const RESERVED_LV_PREFIXES: &[&str] = &["snapshot", "pvmove"];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} `{name}` is {len} characters long; LVM allows at most {MAX_NAME_LEN}")]
    TooLong {
        what: &'static str,
        name: String,
        len: usize,
    },
    #[error("{what} `{name}` contains {found:?}; LVM names may use only A-Z a-z 0-9 + _ . -")]
    BadCharacter {
        what: &'static str,
        name: String,
        found: char,
    },
    #[error("{what} `{name}` is not allowed: {reason}")]
    Reserved {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error(
        "{what} `{name}` contains {found:?}: LVM accepts it, but LINSTOR could not use the \
         pool, because its {property} property accepts only A-Z a-z 0-9 _ -; choose a name \
         made of those"
    )]
    NotUsableByLinstor {
        what: &'static str,
        name: String,
        found: char,
        property: &'static str,
    },
}

fn check_common(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if let Some(found) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '_' | '.' | '-')))
    {
        return Err(NameError::BadCharacter {
            what,
            name: name.to_owned(),
            found,
        });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            what,
            name: name.to_owned(),
            len: name.len(),
        });
    }
    let reserved = |reason| {
        Err(NameError::Reserved {
            what,
            name: name.to_owned(),
            reason,
        })
    };
    if name.starts_with('-') {
        return reserved("a name must not start with '-'");
    }
    if name == "." || name == ".." {
        return reserved("`.` and `..` are path components");
    }
    Ok(())
}

/// Validates the name of any LV LVM's metadata holds, its own hidden sub-LVs
/// (`pool_tdata`, `lvol0_pmspare`) included: LVM's rules for every name, without
/// the reservations that only keep users from making such names.
pub fn validate_lv_name_on_disk(name: &str) -> Result<(), NameError> {
    check_common("logical volume name", name)
}

/// Validates a volume group name.
pub fn validate_vg_name(name: &str) -> Result<(), NameError> {
    check_common("volume group name", name)
}

/// Validates a logical volume name (the thin pool's).
pub fn validate_lv_name(name: &str) -> Result<(), NameError> {
    const WHAT: &str = "thin pool name";
    check_common(WHAT, name)?;
    let reserved = |reason| {
        Err(NameError::Reserved {
            what: WHAT,
            name: name.to_owned(),
            reason,
        })
    };
    if RESERVED_LV_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
    {
        return reserved("LVM reserves names starting with `snapshot` and `pvmove`");
    }
    if RESERVED_LV_PARTS.iter().any(|part| name.contains(part)) {
        return reserved(
            "LVM reserves names containing its sub-LV suffixes such as `_tdata` and `_tmeta`",
        );
    }
    Ok(())
}

/// LINSTOR's rule for the names it is given for an LVM_THIN storage pool: its
/// `StorDriver/LvmVg` and `StorDriver/ThinPool` properties must match
/// `[a-zA-Z0-9_-]+` in full (linstor-common `properties.json`), so `.` and `+`,
/// which LVM allows, would leave a pool LINSTOR refuses to register.
fn check_linstor_charset(
    what: &'static str,
    property: &'static str,
    name: &str,
) -> Result<(), NameError> {
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        Some(found) => Err(NameError::NotUsableByLinstor {
            what,
            name: name.to_owned(),
            found,
            property,
        }),
        None => Ok(()),
    }
}

/// Validates the VG name the operator asked for: LVM's rules, then LINSTOR's.
/// (Names read from disk belong to others and need only [`validate_vg_name`].)
pub fn validate_wanted_vg_name(name: &str) -> Result<(), NameError> {
    validate_vg_name(name)?;
    check_linstor_charset("volume group name", "StorDriver/LvmVg", name)
}

/// Validates the thin pool name the operator asked for: LVM's rules, then LINSTOR's.
pub fn validate_wanted_pool_name(name: &str) -> Result<(), NameError> {
    validate_lv_name(name)?;
    check_linstor_charset("thin pool name", "StorDriver/ThinPool", name)
}

/// A validated name, shown (and serialised) as the bare name.
macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            fn checked(
                name: &str,
                validate: fn(&str) -> Result<(), NameError>,
            ) -> Result<Self, NameError> {
                validate(name).map(|()| $name(name.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }
    };
}

validated_name!(
    /// A volume group name that passed LVM's naming rules.
    VgName
);
validated_name!(
    /// A logical volume name that passed LVM's naming rules.
    LvName
);
validated_name!(
    /// A GPT partition name to look for (PARTITION_LABEL): not empty.
    PartitionLabel
);

impl VgName {
    /// The VG name the operator asked for: LVM's rules, then LINSTOR's.
    pub fn wanted(name: &str) -> Result<Self, NameError> {
        Self::checked(name, validate_wanted_vg_name)
    }

    /// A VG name read from on-disk metadata: LVM's rules.
    pub fn on_disk(name: &str) -> Result<Self, NameError> {
        Self::checked(name, validate_vg_name)
    }
}

impl LvName {
    /// The thin pool name the operator asked for: LVM's rules, then LINSTOR's.
    pub fn wanted_pool(name: &str) -> Result<Self, NameError> {
        Self::checked(name, validate_wanted_pool_name)
    }

    /// A name read from on-disk metadata that a user could have given: LVM's rules
    /// with its reserved prefixes and sub-LV suffixes refused.
    pub fn user_named(name: &str) -> Result<Self, NameError> {
        Self::checked(name, validate_lv_name)
    }

    /// Any LV name read from on-disk metadata, LVM's own sub-LVs included.
    pub fn on_disk(name: &str) -> Result<Self, NameError> {
        Self::checked(name, validate_lv_name_on_disk)
    }
}

impl PartitionLabel {
    /// A partition label to look for: any GPT name except the empty one.
    pub fn new(label: &str) -> Result<Self, NameError> {
        Self::checked(label, |label| {
            if label.is_empty() {
                Err(NameError::Empty {
                    what: "partition label",
                })
            } else {
                Ok(())
            }
        })
    }
}

/// Names for tests, which panic on a name the validators refuse.
#[cfg(test)]
pub(crate) mod test_names {
    use super::*;

    pub fn vg(name: &str) -> VgName {
        VgName::on_disk(name).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn lv(name: &str) -> LvName {
        LvName::on_disk(name).unwrap_or_else(|e| panic!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "linstor-vg",
            "vg_01",
            "a",
            "x.y+z",
            &"v".repeat(MAX_NAME_LEN),
        ] {
            assert_eq!(validate_vg_name(name), Ok(()), "{name}");
            assert_eq!(validate_lv_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn names_that_could_split_a_command_line_are_rejected() {
        for name in ["a b", "a\tb", "a\nb", "vg;rm", "x/y", "é", "--force"] {
            assert!(validate_vg_name(name).is_err(), "{name:?}");
            assert!(validate_lv_name(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn reserved_and_empty_names_are_rejected() {
        assert_eq!(
            validate_vg_name(""),
            Err(NameError::Empty {
                what: "volume group name"
            })
        );
        assert!(validate_vg_name(".").is_err());
        assert!(validate_vg_name("..").is_err());
        assert!(validate_vg_name(&"v".repeat(MAX_NAME_LEN + 1)).is_err());
        for name in [
            "snapshot1",
            "pvmove0",
            "pool_tdata",
            "x_tmeta_y",
            "lvol0_pmspare",
        ] {
            assert!(validate_lv_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn names_linstor_refuses_are_rejected_even_though_lvm_allows_them() {
        for name in ["pool.x", "vg+1", "a.b"] {
            assert_eq!(validate_vg_name(name), Ok(()), "{name}");
            assert_eq!(validate_lv_name(name), Ok(()), "{name}");
            let vg = validate_wanted_vg_name(name);
            assert!(
                matches!(
                    vg,
                    Err(NameError::NotUsableByLinstor {
                        property: "StorDriver/LvmVg",
                        ..
                    })
                ),
                "{name}: {vg:?}"
            );
            let pool = validate_wanted_pool_name(name);
            let message = pool.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.contains("LINSTOR could not use the pool")
                    && message.contains("StorDriver/ThinPool"),
                "{name}: {message}"
            );
        }
        // LINSTOR's pattern has no rule about the first character; LVM's does.
        for name in ["1pool", "_pool", "linstor-vg", "A_b-9"] {
            assert_eq!(validate_wanted_vg_name(name), Ok(()), "{name}");
            assert_eq!(validate_wanted_pool_name(name), Ok(()), "{name}");
        }
        assert!(matches!(
            validate_wanted_vg_name("-vg"),
            Err(NameError::Reserved { .. })
        ));
    }

    #[test]
    fn typed_names_are_made_only_by_their_validators() {
        assert_eq!(
            VgName::wanted("linstor-vg").map(|n| n.to_string()),
            Ok("linstor-vg".to_owned())
        );
        assert!(VgName::wanted("vg.data").is_err());
        assert_eq!(
            VgName::on_disk("vg.data").map(|n| n.to_string()),
            Ok("vg.data".to_owned())
        );
        assert_eq!(
            LvName::wanted_pool("linstor-pool")
                .as_deref()
                .map(|n| n == "linstor-pool"),
            Ok(true)
        );
        assert!(LvName::wanted_pool("pool.x").is_err());
        assert!(LvName::user_named("pool_tdata").is_err());
        assert!(LvName::on_disk("pool_tdata").is_ok());
        assert!(LvName::on_disk("lvol0_pmspare").is_ok());
        assert_eq!(
            PartitionLabel::new("linstor storage").map(|l| l.to_string()),
            Ok("linstor storage".to_owned())
        );
        assert_eq!(
            PartitionLabel::new(""),
            Err(NameError::Empty {
                what: "partition label"
            })
        );
        // Nothing that could split or extend a command line gets through any of them.
        for name in ["", " ", "a b", "a\tb", "-vg", "--force", "x/y", ".", ".."] {
            assert!(VgName::wanted(name).is_err(), "{name:?}");
            assert!(VgName::on_disk(name).is_err(), "{name:?}");
            assert!(LvName::wanted_pool(name).is_err(), "{name:?}");
            assert!(LvName::user_named(name).is_err(), "{name:?}");
            assert!(LvName::on_disk(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn typed_names_serialise_and_print_as_the_bare_name() {
        let vg = VgName::wanted("linstor-vg");
        assert_eq!(
            vg.as_ref()
                .ok()
                .and_then(|v| serde_json::to_string(v).ok())
                .as_deref(),
            Some("\"linstor-vg\"")
        );
        assert_eq!(
            vg.map(|v| format!("{v}/{}", v.len())),
            Ok("linstor-vg/10".to_owned())
        );
    }
}
