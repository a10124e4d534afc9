//! Raw calls into C and the kernel. Every `unsafe` block of the crate lives here,
//! each with a `// SAFETY:` comment; the rest of the crate sees safe functions.

pub mod allocator;
pub mod blkdev;
pub mod dir;
pub mod dm_list;
pub mod dm_remove;
#[cfg(feature = "lvm2cmd")]
pub mod lvm2cmd;
pub mod open;
