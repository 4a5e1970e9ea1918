//! What the fuzz targets share.

use std::path::PathBuf;

/// A folder of this process's own, named after the target: in memory where
/// possible (`/dev/shm`), since writing is not what is being fuzzed and a
/// checkpoint syncs on every append. Created on first call.
pub fn scratch_dir(target: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("checkflow-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the fuzz folder");
    dir
}
