//! What the operator asked for, validated before the disk is touched.
pub mod names;
