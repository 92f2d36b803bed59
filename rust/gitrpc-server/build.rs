//! FindLicense's URL table: for every SPDX license id (the `spdx` crate's list), the first
//! `seeAlso` URL of SPDX's license data (the `license` crate embeds it), written to
//! `$OUT_DIR/license_urls.rs` as a sorted `&[(id, url)]`. Only the URLs reach the binary, not
//! the license texts the `license` crate carries.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let mut rows: Vec<(&str, &str)> = spdx::identifiers::LICENSES
        .iter()
        .filter_map(|l| {
            let lic: &dyn license::License = l.name.parse().ok()?;
            Some((l.name, *lic.see_also().first()?))
        })
        .collect();
    rows.sort();
    rows.dedup_by(|a, b| a.0 == b.0);
    let mut out = String::from("&[\n");
    for (id, url) in rows {
        writeln!(out, "    ({id:?}, {url:?}),").expect("writing to a String");
    }
    out.push_str("]\n");
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(dir.join("license_urls.rs"), out).expect("writing license_urls.rs");
}
