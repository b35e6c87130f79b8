//! Finding and loading the OpenVINO C library once per process ([`ensure_loaded`]), and the
//! loaded runtime's version.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openvino_sys as sys;

use super::{Error, Result, check};

/// Environment variable naming the OpenVINO C library (file) or the folder holding it.
pub const LIBRARY_ENV: &str = "OVLVA_OPENVINO_LIB";

/// Where `scripts/setup.sh` puts the pinned OpenVINO wheel, fixed when the plugin is built.
const PROJECT_VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv");
static LOADED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

/// Candidate library files, in the order they are tried.
fn candidates() -> Vec<PathBuf> {
    // An explicit choice is the only candidate: falling back elsewhere would hide a typo.
    if let Some(v) = std::env::var_os(LIBRARY_ENV) {
        let p = PathBuf::from(v);
        if !p.is_dir() {
            return vec![p];
        }
        // A folder without the library is reported as such, not skipped.
        return vec![library_in(&p).unwrap_or_else(|| p.join("libopenvino_c.so"))];
    }
    let site_packages_libs = |venv: &Path| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(venv.join("lib")) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("site-packages/openvino/libs"))
            .filter(|p| p.is_dir())
            .collect();
        found.sort();
        found
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        dirs.extend(site_packages_libs(Path::new(&venv)));
    }
    dirs.extend(site_packages_libs(Path::new(PROJECT_VENV)));
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&paths));
    }
    if let Some(install) = std::env::var_os("OPENVINO_INSTALL_DIR") {
        dirs.push(PathBuf::from(install).join("runtime/lib/intel64"));
    }
    dirs.push(PathBuf::from("/opt/intel/openvino/runtime/lib/intel64"));
    dirs.iter().filter_map(|dir| library_in(dir)).collect()
}

/// The C library in `dir`: `libopenvino_c.so`, or else the newest versioned name (the PyPI wheel
/// ships only those, e.g. `libopenvino_c.so.2641`).
fn library_in(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join("libopenvino_c.so");
    if plain.exists() {
        return Some(plain);
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libopenvino_c.so."))
        })
        .collect();
    versioned.sort();
    versioned.pop()
}

/// Loads the OpenVINO C library once per process and returns the path it came from.
///
/// Search order: `$OVLVA_OPENVINO_LIB` (file or folder; when set, nothing else is tried), the
/// active virtualenv, the project's
/// `.venv` (made by `scripts/setup.sh`), `LD_LIBRARY_PATH`, `$OPENVINO_INSTALL_DIR`,
/// `/opt/intel/openvino`. The library is loaded from its own folder, where it finds its plugins.
pub fn ensure_loaded() -> Result<&'static Path> {
    let loaded = LOADED.get_or_init(|| {
        let tried = candidates();
        let mut failures = Vec::new();
        for path in &tried {
            if !path.exists() {
                failures.push(format!("{} (missing)", path.display()));
                continue;
            }
            match sys::library::load_from(path.clone()) {
                Ok(()) => return Ok(path.clone()),
                Err(e) => failures.push(format!("{}: {e}", path.display())),
            }
        }
        Err(format!(
            "the OpenVINO C library (libopenvino_c.so) was not found{}. Run `make setup` in the \
             ovlva checkout (it installs the pinned OpenVINO wheel into .venv), or set \
             {LIBRARY_ENV} to the wheel's library, e.g. \
             .venv/lib/python3.11/site-packages/openvino/libs/libopenvino_c.so.2641",
            if failures.is_empty() {
                String::new()
            } else {
                format!(" (tried: {})", failures.join("; "))
            }
        ))
    });
    loaded.as_deref().map_err(|e| Error(e.clone()))
}

/// The loaded runtime's version, e.g. "2026.4.1-...".
pub fn version() -> Result<String> {
    ensure_loaded()?;
    let mut v = sys::ov_version_t {
        buildNumber: std::ptr::null(),
        description: std::ptr::null(),
    };
    // SAFETY: the library is loaded; `v` is a valid out-parameter freed below.
    unsafe {
        check(
            sys::ov_get_openvino_version(&mut v),
            "ov_get_openvino_version",
        )?;
        let s = CStr::from_ptr(v.buildNumber).to_string_lossy().into_owned();
        sys::ov_version_free(&mut v);
        Ok(s)
    }
}
