//! Fuzz target `package`: arbitrary bytes as a package file, parsed
//! (`checkflow_model::parse`) then validated (`checkflow_plan::validate`
//! with every registered task type). Neither may panic or hang; both must
//! answer with a value or an error.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use checkflow_model::LoadedPackage;
use checkflow_plan::Registry;
use libfuzzer_sys::fuzz_target;

/// The task types, built once: building them is not what is being fuzzed.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(checkflow_tasks::registry)
}

/// A folder for relative paths to resolve against; it never holds anything,
/// so validation that looks at the file system sees an empty folder.
fn package_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| checkflow_fuzz::scratch_dir("package"))
}

fuzz_target!(|data: &[u8]| {
    // A package file that is not UTF-8 never reaches the parser (`load`
    // fails with an I/O error); lossy decoding still lets the fuzzer's
    // byte flips reach it.
    let text = String::from_utf8_lossy(data).into_owned();
    let path = package_dir().join("package.yaml");
    let def = match checkflow_model::parse(&path, &text) {
        Ok(def) => def,
        Err(e) => {
            // The message with its snippet must render too.
            let _ = e.to_string();
            return;
        }
    };
    let pkg = LoadedPackage {
        def,
        path,
        dir: package_dir().to_path_buf(),
        text,
    };
    if let Err(e) = checkflow_plan::validate(&pkg, registry()) {
        // Rendering the diagnostics (snippets, carets) must not panic either.
        let _ = e.to_string();
    }
});
