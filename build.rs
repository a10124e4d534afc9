//! Build script. The liblvm2cmd bindings (write path) are generated here from
//! `vendor-headers/` once the write layer lands; for now it only tracks the headers.
fn main() {
    println!("cargo:rerun-if-changed=vendor-headers");
}
