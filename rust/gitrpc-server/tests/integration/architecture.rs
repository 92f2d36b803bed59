//! The server's modules form layers (ARCHITECTURE.md): a module imports (`crate::...`) only
//! modules of lower layers, so there are no import cycles. Checked on the source text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first; a module may use modules of earlier rows only.
const LAYERS: &[&[&str]] = &[
    &[
        "config",
        "error",
        "tempdir",
        "convert",
        "frames",
        "limiter",
        "deadline",
        "unknown",
        "negotiation",
    ],
    &[
        "startup",
        "stream",
        "conn",
        "adaptive",
        "hooks",
        "quarantine",
        "signature",
        "pusher",
        "ratelimit",
    ],
    &["locator", "auth", "limits", "batch", "tls"],
    &["metrics", "housekeeping", "mux"],
    &["accounting", "sidechannel", "packcache", "optimize"],
    &["deps"],
    &["services", "admission", "rpclog"],
    &["layers", "monitor"],
    &["server"],
    &["serving"],
];

/// `crate::<module>` references of one source text, outside comments and test modules.
fn uses(text: &str) -> BTreeSet<String> {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

/// Names re-exported at the crate root (`pub use deps::Deps;`) → their module.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.trim_end_matches(';').split_once("::") else {
            continue;
        };
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            out.insert(name.trim().to_string(), module.to_string());
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
}

#[test]
fn server_modules_import_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, row)| row.iter().map(move |m| (*m, i)))
        .collect();
    let roots = reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_string_lossy();
        let module = top.trim_end_matches(".rs");
        if module == "lib" {
            continue;
        }
        let Some(&mine) = rank.get(module) else {
            wrong.push(format!("{module} is in no layer of LAYERS"));
            continue;
        };
        for used in uses(&std::fs::read_to_string(&file).unwrap()) {
            let target = roots.get(&used).cloned().unwrap_or(used.clone());
            if target == module {
                continue;
            }
            match rank.get(target.as_str()) {
                Some(&theirs) if theirs < mine => {}
                Some(_) => wrong.push(format!("{} uses crate::{used}", rel.display())),
                None => wrong.push(format!("{}: unknown crate::{used}", rel.display())),
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
