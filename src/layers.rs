//! The layering rule, checked: data and imports flow one way, face ->
//! commands -> engine -> store, and the leaves (config, layout, error, log,
//! size, offsets, record, crc) import nothing of the project but each other. A module
//! that reaches up a layer fails this test, naming the file and the import.

/// Each layer, as path prefixes under `src/`, and the top-level modules it
/// may name in `crate::...` paths.
const RULES: &[(&[&str], &[&str])] = &[
    (&["cli.rs"], &["commands", "config", "error", "PLUGIN_NAME"]),
    (
        &["commands/"],
        &[
            "commands",
            "engine",
            "store",
            "config",
            "layout",
            "error",
            "log",
            "size",
            "offsets",
            "record",
            "crc",
            "PLUGIN_NAME",
        ],
    ),
    (&["engine/"], &["engine", "store", "config", "layout", "error", "log", "size", "record", "crc", "PLUGIN_NAME"]),
    (&["store/"], &["store", "config", "layout", "error", "log", "size", "record", "crc", "PLUGIN_NAME"]),
    (
        &["config/", "layout.rs", "error.rs", "log.rs", "size.rs", "offsets.rs", "record.rs", "crc.rs"],
        &["config", "layout", "error", "log", "size", "record", "crc", "PLUGIN_NAME"],
    ),
];

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in files {
        let name = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let Some((_, allowed)) = RULES.iter().find(|(paths, _)| paths.iter().any(|p| name.starts_with(p))) else {
            continue;
        };
        checked += 1;
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            // Comments may point anywhere; code may not.
            if line.trim_start().starts_with("//") {
                continue;
            }
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                let after = &rest[at + "crate::".len()..];
                let module: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                // `$crate::` in a macro is the same crate; `{a, b}` lists
                // are checked by their first item only, which is enough to
                // catch a reach upwards in this code base's style.
                if !module.is_empty() && !allowed.contains(&module.as_str()) {
                    violations.push(format!("src/{name}:{}: crate::{module}", i + 1));
                }
                rest = after;
            }
        }
    }
    assert!(checked > 40, "only {checked} files checked");
    assert!(violations.is_empty(), "imports from a layer above:\n{}", violations.join("\n"));
}

/// Every source file is in the README's code map.
#[test]
fn the_readme_code_map_lists_every_file() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let map = &readme[readme.find("## Layout of the code").expect("a code map")..];
    let mut missing = Vec::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            // A row names a file by its path, or by its bare name after a
            // path in the same directory (`s3/objects.rs`, `multipart.rs`).
            let listed = map.lines().any(|line| {
                line.contains(&format!("`{rel}`"))
                    || (line.contains(&format!("`{name}`")) && line.contains(&format!("`{dir}/")))
            });
            if !listed {
                missing.push(rel);
            }
        }
    }
    assert!(missing.is_empty(), "not in the README's code map: {missing:?}");
}
