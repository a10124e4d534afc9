//! Table rendering.
